// A small path router: the server answers every non-API path with the dashboard's page,
// so `/inspections/ID` can be bookmarked, reloaded and opened in a new tab.

export type Route =
  | { name: "list" }
  | { name: "signin" }
  | { name: "inspection"; id: string }
  | { name: "report"; id: string }
  | { name: "national" }
  | { name: "plan" }
  | { name: "search" }
  | { name: "admin" }
  | { name: "password" }
  | { name: "trust"; code: string }
  | { name: "missing" };

function parse(path: string): Route {
  if (path === "/" || path === "") return { name: "list" };
  if (path === "/signin") return { name: "signin" };
  let m = /^\/inspections\/([0-9a-fA-F-]{1,64})\/?$/.exec(path);
  if (m) return { name: "inspection", id: m[1].toLowerCase() };
  m = /^\/inspections\/([0-9a-fA-F-]{1,64})\/report\/?$/.exec(path);
  if (m) return { name: "report", id: m[1].toLowerCase() };
  if (path === "/national" || path === "/national/") return { name: "national" };
  if (path === "/plan" || path === "/plan/") return { name: "plan" };
  if (path === "/search" || path === "/search/") return { name: "search" };
  if (path === "/admin" || path === "/admin/") return { name: "admin" };
  if (path === "/password" || path === "/password/") return { name: "password" };
  m = /^\/trusts\/([A-Za-z0-9]{1,8})\/?$/.exec(path);
  if (m) return { name: "trust", code: m[1].toUpperCase() };
  return { name: "missing" };
}

class Router {
  route = $state<Route>(parse(location.pathname));
  /** Where to go back to after signing in. */
  search = $state(location.search);

  constructor() {
    addEventListener("popstate", () => this.sync());
    // Same-origin links navigate here without a page load.
    document.addEventListener("click", (e) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      const a = (e.target as Element | null)?.closest?.("a");
      if (!a || a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
      if (a.pathname.startsWith("/api/")) return;
      e.preventDefault();
      this.go(a.pathname + a.search);
    });
  }

  go(to: string, replace = false) {
    if (replace) history.replaceState(null, "", to);
    else history.pushState(null, "", to);
    this.sync();
    scrollTo(0, 0);
  }

  private sync() {
    this.route = parse(location.pathname);
    this.search = location.search;
  }
}

export const router = new Router();
