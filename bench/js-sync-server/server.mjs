// The JavaScript automerge-repo sync server that `sync-bench` compares ours against.
//
// The same setup as @automerge/automerge-repo-sync-server 0.3 (src/server.js): a Repo
// with NodeWSServerAdapter and NodeFSStorageAdapter, `sharePolicy: async () => false`
// (it syncs only documents a client names), no authentication, WebSocket upgrades
// on a plain HTTP server. Express is left out: a bare `http` server answers `/`.
//
// Environment: PORT (0 picks a free port), DATA_DIR (default .amrg),
// WARDCHECK_JS_DIR (where the npm packages are installed; default tests/js).
// Prints `listening on PORT` once it accepts connections; the bench reads that line.
import fs from "node:fs"
import http from "node:http"
import os from "node:os"
import path from "node:path"
import { createRequire } from "node:module"
import { fileURLToPath, pathToFileURL } from "node:url"

// The packages live in tests/js (one package.json and lock for all of the project's
// JavaScript); resolve them from there rather than from this folder.
const here = path.dirname(fileURLToPath(import.meta.url))
const jsDir = process.env.WARDCHECK_JS_DIR ?? path.join(here, "..", "..", "tests", "js")
const require = createRequire(path.join(jsDir, "package.json"))
const load = name => import(pathToFileURL(require.resolve(name)).href)

const { Repo } = await load("@automerge/automerge-repo")
const { NodeWSServerAdapter } = await load("@automerge/automerge-repo-network-websocket")
const { NodeFSStorageAdapter } = await load("@automerge/automerge-repo-storage-nodefs")
const ws = await load("ws")
const WebSocketServer = ws.WebSocketServer ?? ws.default.WebSocketServer

const dir = process.env.DATA_DIR ?? ".amrg"
fs.mkdirSync(dir, { recursive: true })
const port = process.env.PORT !== undefined ? parseInt(process.env.PORT, 10) : 3030

const socket = new WebSocketServer({ noServer: true })
const adapter = new NodeWSServerAdapter(socket)
const repo = new Repo({
  network: [adapter],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // A server does not share generously: it syncs only documents a client asks for.
  sharePolicy: async () => false,
})

// The Repo connects its network adapter only after loading its storage id; a socket
// accepted before that gets no message handler and is dropped by the keep-alive 5 s
// later. So listen only once the adapter is connected (it then has a peer id).
while (adapter.peerId === undefined) {
  await new Promise(resolve => setTimeout(resolve, 5))
}
const server = http.createServer((req, res) => res.end("automerge-repo sync server\n"))
server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, ws => socket.emit("connection", ws, request))
})
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`)
})

const stop = async () => {
  server.close()
  socket.close()
  await repo.flush().catch(() => {})
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
