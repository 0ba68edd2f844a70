// Who is signed in. The session itself is the HttpOnly cookie; this is only what the
// page shows and which parts it offers.
import { api, type Me } from "./api";

class Session {
  me = $state<Me | null>(null);
  /** False until the first `GET /api/v1/me` has answered. */
  known = $state(false);

  async refresh(): Promise<Me | null> {
    this.me = await api.me();
    this.known = true;
    return this.me;
  }

  get isTrustLead(): boolean {
    return this.me?.role.role === "trust-lead";
  }
}

export const session = new Session();
