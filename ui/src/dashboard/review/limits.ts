// The server's limits on what the dashboard writes, checked here first so that a person
// hears what is wrong before anything is sent (the server checks them again).

/** Longest comment, sign-off statement or response, in characters (core's MAX_TEXT_CHARS). */
export const MAX_TEXT_CHARS = 20_000;

/** What is wrong with a text about to be sent, or null. `what` names it: "Your comment". */
export function textProblem(what: string, text: string): string | null {
  if (!text.trim()) return `Enter ${what.charAt(0).toLowerCase()}${what.slice(1)}`;
  const n = [...text].length;
  if (n > MAX_TEXT_CHARS) {
    return `${what} must be ${MAX_TEXT_CHARS.toLocaleString("en-GB")} characters or fewer (it is ${n.toLocaleString("en-GB")})`;
  }
  return null;
}
