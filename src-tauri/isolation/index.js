// The isolation application (Tauri's isolation pattern): every IPC message from the UI
// passes through this sandboxed frame before it reaches the app, and Tauri encrypts it
// here with a key the page never sees. Only the app's own commands are passed on; any
// other is renamed to one that does not exist, so it fails (rather than hangs) and a
// compromised page cannot reach a plugin or core command even where a capability would
// allow it. This list is also the one place the app's commands are named for their
// permissions: src-tauri/build.rs reads it (one name in double quotes per command).
const ALLOWED = new Set([
  "app_status",
  "sign_in",
  "sign_out",
  "list_inspections",
  "open_inspection",
  "set_answer",
  "edit_note",
  "add_photo",
  "photo_thumbnail",
  "add_device",
  "record_observation",
  "add_finding",
  "add_comment",
  "resolve_conflict",
  "submit_inspection",
  "sign_off",
  "inspection_history",
  "sync_status",
  "sync_now",
  "take_servers_copy",
  "carried_actions",
  "check_action",
  "update_check",
  "update_install",
  "plugin:event|listen",
  "plugin:event|unlisten",
]);

window.__TAURI_ISOLATION_HOOK__ = (payload) => {
  if (payload && typeof payload.cmd === "string" && ALLOWED.has(payload.cmd)) {
    return payload;
  }
  return { ...payload, cmd: "refused_by_isolation" };
};
