// The field app's screens, named in the URL's hash: the app is one page served from
// the Tauri shell, and the hash gives back/forward, real links (keyboard and screen
// reader friendly) and a screen that survives a reload, with no server routes.

export type Tab = "checklist" | "devices" | "findings" | "actions" | "conflicts" | "submit";
export const TABS: Tab[] = ["checklist", "devices", "findings", "actions", "conflicts", "submit"];

export type FieldRoute =
  | { name: "home" }
  /** `sub`: the section (checklist) or the device (devices) shown, if any. */
  | { name: "inspection"; id: string; tab: Tab; sub: string | null };

const SEGMENT = /^[\w.-]{1,100}$/;

export function parse(hash: string): FieldRoute {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "i" && parts[1] && SEGMENT.test(parts[1])) {
    const tab = (TABS as string[]).includes(parts[2] ?? "") ? (parts[2] as Tab) : "checklist";
    const sub = parts[3] && SEGMENT.test(parts[3]) ? parts[3] : null;
    return { name: "inspection", id: parts[1], tab, sub };
  }
  return { name: "home" };
}

/** The hash link of a screen. */
export function href(r: FieldRoute): string {
  if (r.name === "home") return "#/";
  const parts = ["i", r.id, r.tab, ...(r.sub ? [r.sub] : [])].map(encodeURIComponent);
  return `#/${parts.join("/")}`;
}

export function inspectionHref(id: string, tab: Tab = "checklist", sub: string | null = null): string {
  return href({ name: "inspection", id, tab, sub });
}

class Router {
  route = $state<FieldRoute>(parse(location.hash));

  constructor() {
    addEventListener("hashchange", () => {
      this.route = parse(location.hash);
    });
  }

  go(to: FieldRoute | string): void {
    const h = typeof to === "string" ? to : href(to);
    if (location.hash !== h) location.hash = h;
    this.route = parse(h);
  }
}

export const router = new Router();
