// An attacker's JavaScript automerge-repo client, for tests/tests/sync_js.rs.
//
// It signs nothing and types nothing through Wardcheck's operations: it opens the
// document with `@automerge/automerge-repo` and its WebSocket adapter, as any JS client
// could, and writes into it by hand what the typed operations refuse. One run makes one
// attack (`--attack`), then waits until the server has answered it:
//
// - an `error` message from the server (the adapter only logs those, so this client
//   reads its incoming messages itself), or
// - the server's sync reply to the message that carried the change (the server takes a
//   connection's messages in order, so its reply means the change was dealt with), or
// - an independent probe (a second Repo, its own connection) seeing the change.
//
// It prints one JSON line: the errors the server sent ({code, message, documentId}),
// whether the change was sent, and whether a probe sees it stored. The Rust test decides
// what should have happened and checks the server's side (heads, audit).
//
// Usage: node attack.mjs --url ws://HOST/api/v1/sync --api http://HOST --user NAME
//          --doc DOCUMENT_ID --attack NAME [--item ITEM_ID] [--photo SHA256]
//          [--bind yes|no] [--force yes] [--timeout-ms N]
// `--force yes` also sends the change in a sync message made by hand, for a reader,
// whose client would otherwise hold it back.
// The token comes from WARDCHECK_TOKEN. Exits 0 once it has an outcome to print, 1 if it
// could not make the attack at all.
import * as A from "@automerge/automerge"
import { Repo, cbor } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`)
    }
    out[argv[i].slice(2)] = argv[i + 1]
  }
  for (const k of ["url", "api", "user", "doc", "attack"]) {
    if (!out[k]) throw new Error(`missing --${k}`)
  }
  return out
}

const sleep = ms => new Promise(r => setTimeout(r, ms))
const now = () => new Date().toISOString()
// Stamped fields are JSON in a plain string scalar, as core writes them.
const scalar = v => new A.ImmutableString(JSON.stringify(v))
const stamped = (value, by) => scalar({ value, by, at: now() })

// The standard adapter, watched: server `error` messages (which it only logs) are kept,
// and outgoing sync messages that carry changes are noted.
class WatchedAdapter extends WebSocketClientAdapter {
  errors = []
  sentChanges = 0
  repliesAfterSend = 0

  receiveMessage(bytes) {
    let decoded
    try {
      decoded = cbor.decode(new Uint8Array(bytes))
    } catch {
      decoded = null
    }
    if (decoded?.type === "error") {
      this.errors.push({
        code: decoded.code ?? null,
        message: decoded.message ?? null,
        documentId: decoded.documentId ?? null,
      })
    } else if (decoded?.type === "sync" && this.sentChanges > 0) {
      this.repliesAfterSend += 1
    }
    return super.receiveMessage(bytes)
  }

  send(message) {
    if (message.type === "sync" && message.data) {
      try {
        if (A.decodeSyncMessage(message.data).changes.length > 0) this.sentChanges += 1
      } catch {
        // Not ours to judge.
      }
    }
    return super.send(message)
  }
}

function connect(url, token, Adapter = WebSocketClientAdapter) {
  const u = new URL(url)
  if (token) u.searchParams.set("access_token", token)
  const adapter = new Adapter(u.toString(), 500)
  const repo = new Repo({ network: [adapter], isEphemeral: true, sharePolicy: async () => true })
  return { repo, adapter }
}

async function bindActor(api, token, actor) {
  const res = await fetch(`${api}/api/v1/actors`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ actor }),
  })
  if (!res.ok) throw new Error(`binding actor ${actor}: ${res.status} ${await res.text()}`)
}

// Each attack: what it writes, and how a probe tells it is stored.
const ATTACKS = {
  // Another trust in meta: the join would then read that trust's telemetry.
  "meta-trust": {
    write: d => {
      d.meta.trust = new A.ImmutableString("RTH")
    },
    stored: d => String(d.meta?.trust) === "RTH",
  },
  // A sign-off in the reviewer's name, from the inspector's device.
  "forged-signoff": {
    write: (d, a) => {
      d.signoffs[a.mark] = scalar({
        id: a.mark,
        role: "reviewer",
        statement: "Reviewed and agreed.",
        by: "rita",
        at: now(),
      })
    },
    stored: (d, a) => d.signoffs?.[a.mark] !== undefined,
  },
  // An answer stamped with someone else's name.
  "forged-stamp": {
    write: (d, a) => {
      d.responses[a.item].answer = stamped({ kind: "met" }, "rita")
    },
    stored: (d, a) => String(d.responses?.[a.item]?.answer ?? "").includes('"rita"'),
  },
  // A photo the writer neither uploaded nor may read.
  "unearned-photo": {
    write: (d, a) => {
      d.responses[a.item].photos[a.photo] = stamped(
        {
          hash: a.photo,
          size: 1000,
          width: 400,
          height: 300,
          mime: "image/jpeg",
          caption: "",
          captured_at: null,
        },
        a.user,
      )
    },
    stored: (d, a) => d.responses?.[a.item]?.photos?.[a.photo] !== undefined,
  },
  // An inspector closing their own inspection.
  close: {
    write: (d, a) => {
      d.meta.state = stamped("closed", a.user)
    },
    stored: d => String(d.meta?.state ?? "").includes('"closed"'),
  },
  // Deleting everything found.
  "delete-findings": {
    write: d => {
      delete d.findings
    },
    stored: d => d.findings === undefined,
  },
  // An honest answer: the control, which must be stored (from a bound actor, by a
  // writer), so that a refusal above is the policy's and not the harness's.
  answer: {
    write: (d, a) => {
      d.responses[a.item].answer = stamped({ kind: "not-met" }, a.user)
    },
    stored: (d, a) => String(d.responses?.[a.item]?.answer ?? "").includes('"not-met"'),
  },
}

async function probe(args, token, attack, deadline) {
  const { repo } = connect(args.url, token)
  try {
    const h = await Promise.race([
      repo.find(args.doc),
      sleep(Math.max(1, deadline - Date.now())).then(() => null),
    ])
    return h ? attack.stored(h.doc(), args) : false
  } catch {
    return false
  } finally {
    await repo.shutdown()
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const attack = ATTACKS[args.attack]
  if (!attack) throw new Error(`no attack ${args.attack}`)
  args.mark = args.mark ?? crypto.randomUUID()
  const timeoutMs = parseInt(args["timeout-ms"] ?? "10000", 10)
  const token = process.env.WARDCHECK_TOKEN
  const deadline = Date.now() + timeoutMs

  const { repo, adapter } = connect(args.url, token, WatchedAdapter)
  let handle
  try {
    handle = await Promise.race([
      repo.find(args.doc),
      sleep(timeoutMs).then(() => {
        throw new Error("finding the document: no answer")
      }),
    ])
  } catch (e) {
    // A document the attacker may not read is the outcome, not a failure.
    await repo.shutdown()
    return { ok: true, attack: args.attack, unavailable: true, reason: String(e?.message ?? e) }
  }
  if (args.bind !== "no") await bindActor(args.api, token, A.getActorId(handle.doc()))
  const actor = A.getActorId(handle.doc())
  handle.change(d => attack.write(d, args))
  if (args.force === "yes") {
    // A reader's client holds its changes back (the server says it is read-only): send
    // the change anyway, in a sync message made by hand, as a raw client would.
    const change = A.getLastLocalChange(handle.doc())
    const data = A.encodeSyncMessage({
      heads: A.getHeads(handle.doc()),
      need: [],
      have: [],
      changes: [change],
    })
    adapter.send({
      type: "sync",
      senderId: repo.peerId,
      targetId: adapter.remotePeerId,
      documentId: handle.documentId,
      data,
    })
  }

  // Wait for the server's answer to the change: an error, or its sync reply. A reply may
  // have been on its way before the change was sent, so once one has come, probes look
  // for the change for a while (an error may still follow).
  let stored = false
  while (Date.now() < deadline && adapter.errors.length === 0) {
    if (adapter.sentChanges > 0 && adapter.repliesAfterSend > 0) {
      const settle = Math.min(deadline, Date.now() + 2000)
      while (!stored && adapter.errors.length === 0 && Date.now() < settle) {
        stored = await probe(args, token, attack, settle)
        if (!stored) await sleep(100)
      }
      break
    }
    await sleep(50)
  }
  // Stop before the adapter reconnects and sends the change again.
  await repo.shutdown()
  return {
    ok: true,
    attack: args.attack,
    actor,
    errors: adapter.errors,
    sentChanges: adapter.sentChanges,
    answered: adapter.errors.length > 0 || adapter.repliesAfterSend > 0,
    stored,
  }
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
