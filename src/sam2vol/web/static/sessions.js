// The sessions saved on this server: a list with open and delete (GET/DELETE api/sessions).

import { api } from "./api.js";

const panel = document.getElementById("sessions-panel");
const list = document.getElementById("sessions-list");

function row(session) {
  const item = document.createElement("li");
  item.dataset.sid = session.sid;
  const label = document.createElement("span");
  const when = session.last_change.replace("T", " ").replace("+00:00", " UTC");
  const objects = `${session.objects} object${session.objects === 1 ? "" : "s"}`;
  label.textContent = `${session.source} — ${objects}, changed ${when}`;
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = "Open";
  open.addEventListener("click", () => {
    location.hash = `session=${session.sid}`;
    location.reload();
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Delete";
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the session on ${session.source}? Its masks and history go too.`)) return;
    try {
      await api.del(`sessions/${session.sid}`);
      item.remove();
    } catch (err) {
      label.textContent = `${session.source}: ${err.message}`;
    }
  });
  item.append(label, " ", open, " ", remove);
  return item;
}

async function refresh() {
  try {
    const { sessions, keep_days: keep } = await api.get("sessions");
    list.replaceChildren(...sessions.map(row));
    const note = keep > 0 ? `kept ${keep} days after their last change` : "kept until deleted";
    panel.querySelector("summary").textContent = `Saved sessions (${sessions.length}, ${note})`;
  } catch (err) {
    list.replaceChildren(document.createTextNode(err.message));
  }
}

if (panel && list) panel.addEventListener("toggle", () => { if (panel.open) refresh(); });
