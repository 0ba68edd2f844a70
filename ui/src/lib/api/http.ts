// The Backend over the server's JSON API. Every request is same-origin and carries the
// `wardcheck_token` cookie set by `POST /api/v1/login` (HttpOnly, SameSite=Strict): the
// page never holds the token, so a script injected into it could not steal one.
import { ApiError, type Backend } from "./backend";
import type {
  ActionSource,
  AdminDevice,
  AdminUser,
  AuditFilter,
  AuditPage,
  OneTimeCode,
  TelemetryImports,
  Comment,
  CorrectiveAction,
  Download,
  CommentTarget,
  Detail,
  History,
  HistorySubject,
  InspectionRecord,
  Join,
  ListFilter,
  Me,
  National,
  NewInspection,
  NewActionStep,
  Page,
  ReportMeta,
  Responded,
  SearchResults,
  Signoff,
  State,
  TelemetrySummary,
  TrustPage,
} from "./types";

/** Most pages `allInspections` reads (200 each: 10,000 inspections). */
const MAX_PAGES = 50;

/** A refused request as an ApiError, with the server's code and message when it sent them. */
async function failure(res: Response): Promise<ApiError> {
  let code = "http_error";
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message);
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, {
    credentials: "same-origin",
    cache: "no-store",
    ...init,
    headers: { Accept: "application/json", ...(init.headers ?? {}) },
  });
  if (!res.ok) throw await failure(res);
  // 204: signed out, nothing to read.
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A JSON body for `call`. */
function json(method: "POST" | "PUT", body: unknown): RequestInit {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

const inspectionPath = (id: string) => `/api/v1/inspections/${encodeURIComponent(id)}`;

function query(params: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export class HttpBackend implements Backend {
  async signIn(user: string, password: string): Promise<Me> {
    const ok = await call<{ user: string; display_name: string; role: Me["role"]; device_id: number }>(
      "/api/v1/login",
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        // The device name shows in `wardcheck-server device list`.
        body: JSON.stringify({ user, password, device: "review dashboard (browser)" }),
      },
    );
    return { user: ok.user, display_name: ok.display_name, role: ok.role, device_id: ok.device_id };
  }

  async signOut(): Promise<void> {
    await call<void>("/api/v1/logout", { method: "POST" });
  }

  async me(): Promise<Me | null> {
    try {
      return await call<Me>("/api/v1/me");
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    }
  }

  listInspections(filter: ListFilter, after?: string | null): Promise<Page> {
    return call<Page>(
      `/api/v1/inspections${query({ trust: filter.trust, state: filter.state, after, limit: "200" })}`,
    );
  }

  async allInspections(filter: ListFilter): Promise<InspectionRecord[]> {
    const all: InspectionRecord[] = [];
    let after: string | null = null;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page: Page = await this.listInspections(filter, after);
      all.push(...page.items);
      if (!page.next) break;
      after = page.next;
    }
    return all;
  }

  inspection(id: string): Promise<Detail> {
    return call<Detail>(`/api/v1/inspections/${encodeURIComponent(id)}`);
  }

  async join(id: string): Promise<Join | null> {
    try {
      return await call<Join>(`/api/v1/inspections/${encodeURIComponent(id)}/join`);
    } catch (e) {
      // Admins hold no document rights: the join answers them 404.
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  async telemetrySummary(id: string): Promise<TelemetrySummary | null> {
    try {
      return await call<TelemetrySummary>(`${inspectionPath(id)}/telemetry-summary`);
    } catch (e) {
      // Admins hold no document rights: the summary answers them 404, like the join.
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  comment(id: string, target: CommentTarget, text: string): Promise<Comment> {
    return call<Comment>(`${inspectionPath(id)}/comments`, json("POST", { target, text }));
  }

  signOff(id: string, statement: string): Promise<Signoff> {
    return call<Signoff>(`${inspectionPath(id)}/signoffs`, json("POST", { statement }));
  }

  async reopen(id: string, reason: string): Promise<void> {
    await call<unknown>(`${inspectionPath(id)}/reopen`, json("POST", { reason }));
  }

  history(id: string, subject: HistorySubject): Promise<History> {
    const [k, v] = Object.entries(subject)[0];
    return call<History>(`${inspectionPath(id)}/history${query({ [k]: v })}`);
  }

  changeState(id: string, state: State): Promise<InspectionRecord> {
    return call<InspectionRecord>(`${inspectionPath(id)}/state`, json("POST", { state }));
  }

  share(id: string): Promise<InspectionRecord> {
    return call<InspectionRecord>(`${inspectionPath(id)}/share`, { method: "POST" });
  }

  respond(id: string, finding: string, text: string): Promise<Responded> {
    return call<Responded>(
      `${inspectionPath(id)}/responses/${encodeURIComponent(finding)}`,
      json("PUT", { text }),
    );
  }

  actions(trust?: string | null): Promise<CorrectiveAction[]> {
    return call<CorrectiveAction[]>(`/api/v1/actions${query({ trust })}`);
  }

  raiseAction(id: string, source: ActionSource, what: string, due: string): Promise<CorrectiveAction> {
    return call<CorrectiveAction>(`${inspectionPath(id)}/actions`, json("POST", { source, what, due }));
  }

  actionStep(action: string, step: NewActionStep): Promise<CorrectiveAction> {
    return call<CorrectiveAction>(`/api/v1/actions/${encodeURIComponent(action)}/steps`, json("POST", step));
  }

  createInspection(plan: NewInspection): Promise<InspectionRecord> {
    return call<InspectionRecord>("/api/v1/inspections", json("POST", plan));
  }

  cancelVisit(id: string): Promise<InspectionRecord> {
    return call<InspectionRecord>(`/api/v1/inspections/${encodeURIComponent(id)}/cancel`, { method: "POST" });
  }

  reschedule(id: string, start: string, end: string | null): Promise<{ visit_start: string; visit_end: string | null }> {
    return call(`/api/v1/inspections/${encodeURIComponent(id)}/schedule`, json("POST", end ? { visit_start: start, visit_end: end } : { visit_start: start }));
  }

  search(q: string): Promise<SearchResults> {
    return call<SearchResults>(`/api/v1/search${query({ q })}`);
  }

  national(region?: string | null, trustType?: string | null): Promise<National> {
    return call<National>(`/api/v1/national${query({ region, trust_type: trustType })}`);
  }

  trust(code: string): Promise<TrustPage> {
    return call<TrustPage>(`/api/v1/trusts/${encodeURIComponent(code)}`);
  }

  makeReport(id: string): Promise<ReportMeta> {
    return call<ReportMeta>(`/api/v1/inspections/${encodeURIComponent(id)}/reports`, { method: "POST" });
  }

  async reports(id: string): Promise<ReportMeta[]> {
    return (await call<{ reports: ReportMeta[] }>(`/api/v1/inspections/${encodeURIComponent(id)}/reports`)).reports;
  }

  inspectionCsvUrl(id: string): string {
    return `/api/v1/inspections/${encodeURIComponent(id)}/export.csv`;
  }

  reportUrl(sha256: string): string {
    return `/api/v1/reports/${encodeURIComponent(sha256)}`;
  }

  async evidencePack(id: string): Promise<Download> {
    const res = await fetch(`/api/v1/inspections/${encodeURIComponent(id)}/evidence-pack`, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!res.ok) throw await failure(res);
    return {
      blob: await res.blob(),
      sha256: res.headers.get("X-Content-SHA256") ?? "",
      name: `wardcheck-evidence-${id}.zip`,
    };
  }

  users(): Promise<AdminUser[]> {
    return call<AdminUser[]>("/api/v1/users");
  }

  addUser(name: string, displayName: string, role: string, trust: string | null): Promise<OneTimeCode> {
    const body: Record<string, string> = { name, role };
    if (displayName) body.display_name = displayName;
    if (trust) body.trust = trust;
    return call<OneTimeCode>("/api/v1/users", json("POST", body));
  }

  setUserDisabled(name: string, disabled: boolean): Promise<AdminUser> {
    return call<AdminUser>(`/api/v1/users/${encodeURIComponent(name)}/${disabled ? "disable" : "enable"}`, { method: "POST" });
  }

  passwordCode(name: string): Promise<OneTimeCode> {
    return call<OneTimeCode>(`/api/v1/users/${encodeURIComponent(name)}/password-code`, { method: "POST" });
  }

  async setPassword(user: string, code: string, password: string): Promise<void> {
    await call<void>("/api/v1/password", json("POST", { user, code, password }));
  }

  devices(): Promise<AdminDevice[]> {
    return call<AdminDevice[]>("/api/v1/devices");
  }

  async revokeDevice(id: number, wipe: boolean): Promise<void> {
    await call<unknown>(`/api/v1/devices/${id}/revoke`, json("POST", { wipe }));
  }

  audit(filter: AuditFilter): Promise<AuditPage> {
    return call<AuditPage>(`/api/v1/audit${auditQuery(filter)}`);
  }

  telemetryImports(): Promise<TelemetryImports> {
    return call<TelemetryImports>("/api/v1/telemetry/imports");
  }

  auditCsvUrl(filter: AuditFilter): string {
    return `/api/v1/audit.csv${auditQuery({ ...filter, before: null })}`;
  }

  async uploadPhoto(bytes: ArrayBuffer): Promise<string> {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    const sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    await call<unknown>(this.photoUrl(sha), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    return sha;
  }

  photoUrl(sha256: string): string {
    return `/api/v1/blobs/${encodeURIComponent(sha256)}`;
  }
}

/** The audit search's query string: empty filters left out. */
function auditQuery(f: AuditFilter): string {
  return query({
    user: f.user?.trim() || null,
    action: f.action?.trim() || null,
    inspection: f.inspection?.trim() || null,
    trust: f.trust?.trim().toUpperCase() || null,
    from: f.from || null,
    to: f.to || null,
    before: f.before == null ? null : String(f.before),
  });
}
