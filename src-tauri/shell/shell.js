// Calls the shell's one command through Tauri's IPC; no remote origins, no inline code.
const invoke = window.__TAURI_INTERNALS__.invoke;
const info = await invoke("app_info");
document.getElementById("version").textContent = `v${info.version}`;
const list = document.getElementById("checklists");
list.replaceChildren(
  ...info.checklists.map((c) => {
    const li = document.createElement("li");
    li.textContent = c;
    return li;
  }),
);
