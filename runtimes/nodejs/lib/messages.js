'use strict';
/**
 * What a function sees of HTTP: the event built from a request, the request and response objects it gets as
 * event.extensions, and how its result becomes a body. Fields and decoding rules are the Python runtime's
 * (runtimes/python/kubeless_runtime.py), so that a function sees the same event in every runtime.
 */

const http = require('http');
const { randomFillSync } = require('crypto');

const TEXT_TYPE = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';
const BYTES_TYPE = 'application/octet-stream';
const TEXT_MEDIA_TYPES = new Set(['application/x-www-form-urlencoded']);
const EMPTY_BODY = Buffer.alloc(0);

/** A request the runtime refuses before calling the function, with the status to answer. */
class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- request ---------------------------------------------------------------------------------------------------

/** What a function sees of the request as event.extensions.request: Node's request plus `body` (a Buffer),
 * and Express' `path`, `query` and `get(header)`. */
class FunctionRequest extends http.IncomingMessage {
  constructor(socket) {
    super(socket);
    this.body = EMPTY_BODY;
  }

  get path() {
    const query = this.url.indexOf('?');
    return query < 0 ? this.url : this.url.slice(0, query);
  }

  get query() {
    const start = this.url.indexOf('?');
    const query = {};
    if (start < 0) return query;
    for (const [name, value] of new URLSearchParams(this.url.slice(start + 1))) {
      const previous = query[name];
      query[name] = previous === undefined ? value : [].concat(previous, value);
    }
    return query;
  }

  get(name) {
    return this.headers[name.toLowerCase()];
  }
}

/** The function's first argument, for a request whose whole body is read; `clock` times events that come without
 * an event-time. Throws a RequestError for a body that cannot be what its Content-Type says. */
function newEvent(req, res, body, clock) {
  req.body = body;
  const headers = req.headers;
  const [mediaType, charset] = parseContentType(headers['content-type']);
  return {
    data: decodeData(body, mediaType, charset),
    'event-id': headers['event-id'] || newEventId(),
    'event-type': headers['event-type'] || mediaType || '',
    'event-time': headers['event-time'] || clock.rfc3339(),
    'event-namespace': headers['event-namespace'] || '',
    extensions: { request: req, response: res },
  };
}

const NO_CONTENT_TYPE = [null, null];

/** [media type, charset] of a Content-Type header, lower-cased; [null, null] when absent. */
function parseContentType(value) {
  if (!value) return NO_CONTENT_TYPE;
  const parts = value.split(';');
  let charset = null;
  for (let i = 1; i < parts.length; i++) {
    const separator = parts[i].indexOf('=');
    if (separator > 0 && parts[i].slice(0, separator).trim().toLowerCase() === 'charset') {
      charset = parts[i].slice(separator + 1).trim().replace(/^"|"$/g, '');
    }
  }
  return [parts[0].trim().toLowerCase(), charset];
}

/** event.data: parsed JSON for JSON media types, text for text, forms and no type, a Buffer otherwise. */
function decodeData(body, mediaType, charset) {
  if (mediaType !== null && (mediaType === JSON_TYPE || mediaType.endsWith('+json'))) {
    if (body.length === 0) return null;
    try {
      return JSON.parse(decodeText(body, charset));
    } catch (error) {
      throw new RequestError(400, `invalid JSON body: ${error.message}`);
    }
  }
  if (body.length === 0) return '';
  if (mediaType === null || mediaType.startsWith('text/') || TEXT_MEDIA_TYPES.has(mediaType)) {
    try {
      return decodeText(body, charset);
    } catch {
      return body;
    }
  }
  return body;
}

const decoders = new Map();

/** The body as text in `charset` (default UTF-8); throws on bytes invalid in it or an unknown charset. */
function decodeText(body, charset) {
  const label = charset ? charset.toLowerCase() : 'utf-8';
  if (label === 'utf-8' || label === 'utf8') {
    if (!isUtf8(body)) throw new TypeError('the body is not valid utf-8');
    return body.toString('utf8');
  }
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    decoder = newDecoder(label);
    decoders.set(label, decoder);
  }
  if (decoder === null) throw new RangeError(`unknown charset ${charset}`);
  return decoder.decode(body);
}

/** A strict TextDecoder for a charset label, also as Python spells some (latin-1, utf_8); null if unknown. */
function newDecoder(label) {
  for (const candidate of [label, label.replace(/[-_]/g, '')]) {
    try {
      return new TextDecoder(candidate, { fatal: true });
    } catch {
      // not a WHATWG label
    }
  }
  return null;
}

const isUtf8 = require('buffer').isUtf8 || ((body) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(body);
    return true;
  } catch {
    return false;
  }
});

const ID_POOL = Buffer.alloc(16 * 256);
let idPool = '';
let idOffset = 0;

/** A random UUID (version 4) in hex, as the Python runtime's uuid4().hex. Cut from a hex string of 256 of them,
 * made at once: randomUUID() plus removing its dashes costs four times as much. */
function newEventId() {
  if (idOffset === idPool.length) {
    randomFillSync(ID_POOL);
    for (let slot = 0; slot < ID_POOL.length; slot += 16) {
      ID_POOL[slot + 6] = (ID_POOL[slot + 6] & 0x0f) | 0x40;
      ID_POOL[slot + 8] = (ID_POOL[slot + 8] & 0x3f) | 0x80;
    }
    idPool = ID_POOL.toString('hex');
    idOffset = 0;
  }
  idOffset += 32;
  return idPool.slice(idOffset - 32, idOffset);
}

// --- response --------------------------------------------------------------------------------------------------

/** event.extensions.response: Node's response, with CORS on whatever the function writes, and Express'
 * `status`, `set`, `send` and `json` for functions written against Kubeless' Express runtime. */
class FunctionResponse extends http.ServerResponse {
  writeHead(...args) {
    if (!this.hasHeader('access-control-allow-origin')) this.setHeader('Access-Control-Allow-Origin', '*');
    return super.writeHead(...args);
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  set(name, value) {
    this.setHeader(name, value);
    return this;
  }

  send(body) {
    const [payload, contentType] = encodeBody(body);
    if (contentType && !this.hasHeader('content-type')) this.setHeader('Content-Type', contentType);
    this.end(payload);
    return this;
  }

  json(value) {
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', JSON_TYPE);
    this.end(JSON.stringify(value));
    return this;
  }
}

/** [payload, content type] for a function's result: strings are text, bytes are bytes, the rest JSON. */
function encodeBody(value) {
  if (value === undefined || value === null) return ['', null];
  if (typeof value === 'string') return [value, TEXT_TYPE];
  if (value instanceof Uint8Array) return [value, BYTES_TYPE];
  if (value instanceof ArrayBuffer) return [Buffer.from(value), BYTES_TYPE];
  const json = JSON.stringify(value);
  return json === undefined ? ['', null] : [json, JSON_TYPE];
}

/** A thrown value as `<name>: <message>` on one line: the body of a 500, and the cause in start-up errors. */
function errorMessage(error) {
  const name = error instanceof Error || (error && typeof error.name === 'string') ? error.name : 'Error';
  const message = error instanceof Error || (error && error.message !== undefined) ? error.message : error;
  return `${name}: ${String(message).replace(/[\r\n]+/g, ' ')}`;
}

module.exports = {
  TEXT_TYPE, EMPTY_BODY, RequestError, FunctionRequest, FunctionResponse, newEvent, encodeBody, errorMessage,
};
