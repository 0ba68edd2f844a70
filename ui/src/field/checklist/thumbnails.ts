// Thumbnails by SHA-256 for the session: a photo's bytes never change, so neither does
// its thumbnail.
import type { FieldBackend } from "../../lib/api/field-types";

const caches = new WeakMap<FieldBackend, Map<string, Promise<string>>>();

export function thumbnail(backend: FieldBackend, sha256: string): Promise<string> {
  let cache = caches.get(backend);
  if (!cache) caches.set(backend, (cache = new Map()));
  let p = cache.get(sha256);
  if (!p) {
    p = backend.photoThumbnail(sha256);
    // A failure is not kept: the next showing asks again.
    p.catch(() => cache.delete(sha256));
    cache.set(sha256, p);
  }
  return p;
}
