// Turns the checklist files (../checklists/*.toml) into src/generated/checklists.json:
// per checklist `id@version`, its sections and items (titles, prompts, severity, answer
// kind, telemetry check), with a template's includes resolved as the server does.
//
// The dashboard shows prompts and section titles from this; the server's views name
// items only by id. An inspection pinned to a checklist version this build does not
// carry still shows, with item ids in place of prompts.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "..", "checklists");
const out = join(here, "..", "src", "generated", "checklists.json");

const files = new Map();
for (const name of readdirSync(source).filter((f) => f.endsWith(".toml")).sort()) {
  files.set(name, parse(readFileSync(join(source, name), "utf8")));
}

function sectionsOf(doc) {
  const scope = doc.scope ?? "inspection";
  return (doc.sections ?? []).map((s) => ({
    id: s.id,
    title: s.title,
    scope,
    items: s.items.map((i) => ({
      id: i.id,
      prompt: i.prompt,
      severity: i.severity,
      answer: typeof i.answer === "string" ? i.answer : i.answer.kind,
      unit: typeof i.answer === "object" ? (i.answer.unit ?? null) : null,
      telemetry: i.telemetry ?? null,
    })),
  }));
}

const checklists = {};
for (const [name, doc] of files) {
  let sections;
  if (doc.include) {
    sections = [];
    for (const inc of doc.include) {
      const included = files.get(inc.file);
      if (!included) throw new Error(`${name}: includes ${inc.file}, which is not in ${source}`);
      const all = sectionsOf(included);
      const wanted = inc.sections === "all" ? all : inc.sections.map((id) => all.find((s) => s.id === id));
      if (wanted.some((s) => !s)) throw new Error(`${name}: a section named in ${inc.file} does not exist`);
      sections.push(...wanted);
    }
  } else {
    sections = sectionsOf(doc);
  }
  checklists[`${doc.id}@${doc.version}`] = { id: doc.id, version: doc.version, title: doc.title, sections };
}

mkdirSync(dirname(out), { recursive: true });
const text = JSON.stringify(checklists, null, 1) + "\n";
let before = null;
try {
  before = readFileSync(out, "utf8");
} catch {}
// Unchanged output is not rewritten, so Vite's watcher and svelte-check see no change.
if (before !== text) writeFileSync(out, text);
console.log(`checklists: ${Object.keys(checklists).join(", ")}`);
