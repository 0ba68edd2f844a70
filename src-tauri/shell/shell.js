// Calls the shell's one command through Tauri's IPC; no remote origins, no inline code
// (the CSP in tauri.conf.json allows scripts from the app's own origin only).
const invoke = window.__TAURI_INTERNALS__.invoke;
const list = document.getElementById("checklists");

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

try {
  const info = await invoke("app_info");
  document.getElementById("version").textContent = `v${info.version}`;
  list.replaceChildren(
    ...(info.checklists.length > 0 ? info.checklists.map(item) : [item("none bundled yet")]),
  );
} catch (err) {
  list.replaceChildren(item(`could not ask the app: ${err}`));
}
