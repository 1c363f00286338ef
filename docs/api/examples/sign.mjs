// Signing OMN venue requests with Node.js's built-in crypto (Node 16+; no npm packages).
//
//   node docs/api/examples/sign.mjs                      signs the test vectors, prints one JSON line each
//   node docs/api/examples/sign.mjs <private-key-hex>    prints the headers for a GET /v1/instruments
//
// The signed bytes are  `${ts}\n${METHOD}\n${path with ?query}\n` + body  (ts = integer ms since the
// epoch). A websocket login signs method LOGIN, path /v1/ws and the welcome frame's nonce as body.
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// PKCS#8 DER prefix of an Ed25519 private key; the 32 raw key bytes follow it.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

export function privateKey(hex) {
  const raw = Buffer.from(hex, "hex");
  if (raw.length !== 32) throw new Error("the private key is 32 raw bytes (64 hex characters)");
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
}

export function payload(tsMs, method, path, body = "") {
  return Buffer.concat([Buffer.from(`${tsMs}\n${method.toUpperCase()}\n${path}\n`, "ascii"), Buffer.from(body, "utf8")]);
}

export function signature(key, tsMs, method, path, body = "") {
  return sign(null, payload(tsMs, method, path, body), key).toString("base64");
}

/** Headers for a signed REST request. */
export function restHeaders(keyId, key, method, path, body = "", tsMs = Date.now()) {
  return { "OMN-Key": keyId, "OMN-Timestamp": String(tsMs), "OMN-Signature": signature(key, tsMs, method, path, body) };
}

/** The websocket login frame answering the server's welcome {op: "welcome", nonce, ...}. */
export function loginFrame(keyId, key, nonce, tsMs = Date.now()) {
  return { op: "login", req_id: 1, key_id: keyId, ts: tsMs, signature: signature(key, tsMs, "LOGIN", "/v1/ws", nonce) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2]) {
    console.log(JSON.stringify(restHeaders("<your key id>", privateKey(process.argv[2]), "GET", "/v1/instruments")));
  } else {
    const file = join(dirname(fileURLToPath(import.meta.url)), "..", "signing-vectors.json");
    const doc = JSON.parse(readFileSync(file, "utf8"));
    const key = privateKey(doc.private_key_hex);
    for (const v of doc.vectors) {
      const body = v.method === "LOGIN" ? v.nonce : v.body;
      console.log(JSON.stringify({ name: v.name, payload_hex: payload(v.ts_ms, v.method, v.path, body).toString("hex"),
                                   signature_base64: signature(key, v.ts_ms, v.method, v.path, body) }));
    }
  }
}
