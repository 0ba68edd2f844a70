// The JavaScript automerge-repo client of the interop test (tests/tests/sync_js.rs).
//
// It connects to the sync endpoint the way a JS WebSocket client must (the device
// token in `?access_token=`, since it can set no header), with no storage, finds the
// inspection and its review document, binds the Automerge actors it will write with to
// its user (`POST /api/v1/actors`: the server takes a change only from a bound actor),
// reads the answer the Rust client set, appends to that item's note and adds a comment
// in the review document, then makes sure the server holds the edit: a second,
// independent Repo (its own connection) fetches the review document until the comment is
// there. It prints one JSON line with what it saw and did.
//
// Usage: node client.mjs --url ws://HOST/api/v1/sync --api http://HOST --user NAME
//          --doc DOCUMENT_ID --review REVIEW_DOCUMENT_ID --item ITEM_ID
//          --comment-id UUID --note-text TEXT
// The token comes from the WARDCHECK_TOKEN environment variable (not an argument, so
// it does not show in `ps`). Exits 0 on success, 1 on any failure, within --timeout-ms.
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`)
    }
    out[argv[i].slice(2)] = argv[i + 1]
  }
  for (const k of ["url", "api", "user", "doc", "review", "item", "comment-id", "note-text"]) {
    if (!out[k]) throw new Error(`missing --${k}`)
  }
  return out
}

const str = v => (A.isImmutableString(v) ? v.val : v)

function withTimeout(promise, ms, what) {
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}

function connect(url, token) {
  const u = new URL(url)
  if (token) u.searchParams.set("access_token", token)
  // A short retry interval: the adapter reconnects on its own if the first try fails.
  return new Repo({
    network: [new WebSocketClientAdapter(u.toString(), 500)],
    isEphemeral: true,
    sharePolicy: async () => true,
  })
}

// Binds an actor to this device's user, as a client must before the server takes its
// changes.
async function bindActor(api, token, actor) {
  const res = await fetch(`${api}/api/v1/actors`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ actor }),
  })
  if (!res.ok) throw new Error(`binding actor ${actor}: ${res.status} ${await res.text()}`)
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const timeoutMs = parseInt(args["timeout-ms"] ?? "20000", 10)
  const token = process.env.WARDCHECK_TOKEN
  const item = args.item

  const repo = connect(args.url, token)
  const handle = await withTimeout(repo.find(args.doc), timeoutMs, "finding the document")
  const doc = handle.doc()
  const response = doc.responses?.[item]
  if (!response) throw new Error(`the document has no responses.${item}`)
  const answerJson = str(response.answer)
  const answer = answerJson === undefined ? null : JSON.parse(answerJson)
  const noteBefore = String(response.note ?? "")

  const review = await withTimeout(repo.find(args.review), timeoutMs, "finding the review document")
  await bindActor(args.api, token, A.getActorId(handle.doc()))
  await bindActor(args.api, token, A.getActorId(review.doc()))

  const now = new Date().toISOString()
  const by = args.user
  const comment = {
    id: args["comment-id"],
    target: { kind: "item", id: item },
    text: "Checked from the JavaScript client",
    by,
    at: now,
  }
  handle.change(d => {
    // The note is Automerge text: splice, so concurrent edits merge.
    A.splice(d, ["responses", item, "note"], noteBefore.length, 0, args["note-text"])
    // Stamped fields and comments are JSON in a plain string scalar, as core writes
    // them; a bare JS string would become a text object. Every stamp names the user.
    d.responses[item].note_edited = new A.ImmutableString(JSON.stringify({ by, at: now }))
  })
  // Comments live in the review document, which the trust never reads.
  review.change(d => {
    d.comments[comment.id] = new A.ImmutableString(JSON.stringify(comment))
  })
  const heads = A.getHeads(handle.doc())

  // The server has the edits once an independent client fetching the documents sees
  // them: both, the note in the inspection and the comment in the review document (the
  // two documents sync independently, so one may arrive before the other).
  const noteAfter = String(handle.doc().responses[item].note)
  const deadline = Date.now() + timeoutMs
  let confirmed = false
  while (!confirmed && Date.now() < deadline) {
    const probe = connect(args.url, token)
    try {
      const left = () => Math.max(1, deadline - Date.now())
      const r = await withTimeout(probe.find(args.review), left(), "probing")
      const i = await withTimeout(probe.find(args.doc), left(), "probing")
      confirmed =
        r.doc().comments?.[comment.id] !== undefined &&
        String(i.doc().responses?.[item]?.note ?? "") === noteAfter
    } catch {
      // Not yet: try again.
    }
    await probe.shutdown()
    if (!confirmed) await new Promise(r => setTimeout(r, 100))
  }
  if (!confirmed) throw new Error("the server never showed the JS client's edit")

  const result = {
    ok: true,
    answer,
    noteBefore,
    noteAfter: String(handle.doc().responses[item].note),
    commentId: comment.id,
    heads,
  }
  await repo.shutdown()
  return result
}

main().then(
  result => {
    console.log(JSON.stringify(result))
    process.exit(0)
  },
  err => {
    console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err) }))
    process.exit(1)
  },
)
