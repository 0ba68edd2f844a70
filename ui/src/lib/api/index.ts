// The only module components import to reach the backend.
import type { Backend } from "./backend";
import { HttpBackend } from "./http";

export { ApiError, type Backend } from "./backend";
export type * from "./types";
export { STATES } from "./types";

/** The dashboard's backend: the server's JSON API, same origin. */
export const api: Backend = new HttpBackend();
