"""The weights-free default engine: graph cuts with a shape prior, slice by slice.

Method. Each object is tracked on its own, one slice at a time, from each
prompted slice (an *anchor*). On an anchor, an intensity model is learned:
smoothed histograms of the object's pixels against a ring 1.5-10 mm around
it, used as a per-pixel log-likelihood ratio (LLR). On the next slice, a
binary graph cut (PyMaxflow) runs in a crop around the previous slice's mask
and minimises: the LLR; a shape prior from the signed distance to the
previous mask (growth beyond a 0.5 mm band costs 1 per mm and is forbidden
beyond ``max(8 mm, 1.5 slice thicknesses)``, and beyond half the anchor mask's
equivalent radius for small objects; shrinking costs at most 1, so clear
evidence can end the object); and a contrast-sensitive smoothness term
(8-neighbour GrabCut weights). Holes are filled and only components touching
the previous mask are kept. The object has ended, and the rest of the way is
empty, when the new mask is too small (< 4 mm^2), collapses (< 0.2 of the
previous area) or balloons (> 2.5x), lies mostly off the previous mask, fits
the model poorly relative to the anchor's own fit (mean LLR under 0.1 of the
anchor's, or a share of object-like pixels under 0.4 of the anchor's),
or has merged into look-alike tissue (too many object-like pixels in the
3 mm ring around it). A prompted slice met on the way replaces the tracked
mask and restarts tracking with its own model, so corrections stick.

After each run from an anchor, its tracked slices are re-cut together
(:mod:`.refine3d`): a 3D graph cut over the band of the tracked masks, the
anchor hard both ways, each mask's core deeper than 2 mm object, more than
0.5 mm outside it background, unaries from each slice's own core against its
own surround, contrast-sensitive smoothness in-plane and across slices (per
mm). It takes back the rims tracking keeps where a small object tapers.

Prompts on one slice: a mask is taken as is; a box is segmented GrabCut-style
(histogram models re-estimated three times, the box's outside as background);
each click, in order, corrects the mask so far: a positive click outside it
grows a region from the click (a seeded graph cut with an intensity model
started from around the click and a cost on the distance from it, small for
the first click, larger for corrections). A first click whose cut grows
nothing falls back to a geodesic competition between the click and a circle
10 mm around it (:mod:`.geodesic`), and a first click's region loses thin
appendages (thinner than half its own thickness, at most a 2 mm neck), where
leaks start. A negative click removes what it
touches (the whole component when it is one of several; the part beyond a
neck thinner than 4 mm; else the click's side of a watershed split between
it and what is kept, which follows edges rather than a disc around the click,
so a thin false rim goes without a bite out of the object beside it).

Each slice result carries a confidence: 1 on prompted slices, the share of
object-like pixels times the mean LLR relative to the anchor's on tracked
slices, and ``1 - 0.5**n`` on the n-th empty slice past the object's end.

Example:
    >>> from sam2vol.engines import create_engine
    >>> create_engine("default").name
    'default'
"""

from sam2vol.engines.default.engine import DefaultEngine
from sam2vol.engines.default.params import DefaultParams

__all__ = ["DefaultEngine", "DefaultParams"]
