// A typed client of the yna-engine calling API: the REST calls are openapi-fetch over the
// types openapi-typescript generated from schemas/openapi.yaml (src/schema.d.ts, made by
// `npm run generate`; never edited by hand), with a middleware that adds the Bearer token
// and signs a PoP token per request (T-Mobile's tmo-poptoken-builder), and a
// notification socket that reconnects with `since` so no notification is lost.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import { createRequire } from "node:module";
import WebSocket from "ws";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export type Call = components["schemas"]["Call"];
export type CallStartRequest = components["schemas"]["CallStartRequest"];
export type CallStartResponse = components["schemas"]["CallStartResponse"];
export type ErrorInfo = components["schemas"]["ErrorInfo"];
export type SessionStatus = components["schemas"]["SessionStatus"];

// The package's package.json names a main file it does not ship: the file itself.
const require = createRequire(import.meta.url);
const popBuilder = require("tmo-poptoken-builder/poptoken-builder-node.js") as {
  buildPopToken(ehts: Map<string, string>, privateKeyPem: string): string;
};

export interface ClientOptions {
  /** The engine's address with its --base-path, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** The access token (Bearer), whose cnf.jwk is the public half of popKeyPem. */
  accessToken: string;
  /** The device's private key (PKCS#8 PEM, RSA): signs a PoP token per request. */
  popKeyPem?: string;
}

/**
 * Adds `Authorization: Bearer …` and, with a key, `X-Authorization`: a PoP token over the
 * Authorization header, the uri (path and query as sent), the method and the body
 * (contract §2).
 */
export function authMiddleware(accessToken: string, popKeyPem?: string): Middleware {
  return {
    async onRequest({ request }) {
      const authorization = `Bearer ${accessToken}`;
      request.headers.set("Authorization", authorization);
      if (!popKeyPem) return request;
      const url = new URL(request.url);
      const ehts = new Map<string, string>([
        ["Authorization", authorization],
        ["uri", url.pathname + url.search],
        ["http-method", request.method],
      ]);
      const body = request.body ? await request.clone().text() : "";
      if (body) ehts.set("body", body);
      request.headers.set("X-Authorization", popBuilder.buildPopToken(ehts, popKeyPem));
      return request;
    },
  };
}

export type YnaClient = Client<paths>;

/** The REST client: `client.POST("/hold/{callId}", { params: { path: { callId } }, body: { sdp } })`. */
export function createYnaClient(opts: ClientOptions): YnaClient {
  const client = createClient<paths>({ baseUrl: opts.baseUrl });
  client.use(authMiddleware(opts.accessToken, opts.popKeyPem));
  return client;
}

/** One frame of the notification socket (schemas/asyncapi.yaml). */
export interface NotificationReference {
  epochTime: number;
  notificationId: number;
  sequenceNumber: number;
}
export interface SessionInvitationNotification {
  originatorAddress: string;
  receiverAddress: string;
  callObjectRef: string;
  sdp?: string;
  notificationReference: NotificationReference;
  [more: string]: unknown;
}
export interface SessionStatusNotification {
  status: SessionStatus;
  callObjectRef: string;
  responseCode?: number;
  sdp?: string;
  reason?: string;
  notificationReference: NotificationReference;
  [more: string]: unknown;
}
export type NotificationFrame =
  | { sessionInvitationNotification: SessionInvitationNotification }
  | { sessionStatusNotification: SessionStatusNotification };

/** The notification inside a frame, whichever kind it is. */
export function bodyOf(frame: NotificationFrame): SessionInvitationNotification | SessionStatusNotification {
  return "sessionInvitationNotification" in frame ? frame.sessionInvitationNotification : frame.sessionStatusNotification;
}

/** The callId a frame is about (the last segment of its callObjectRef). */
export function callIdOf(frame: NotificationFrame): string {
  const ref = bodyOf(frame).callObjectRef;
  return ref.slice(ref.lastIndexOf("/") + 1);
}

export function sequenceOf(frame: NotificationFrame): number {
  return bodyOf(frame).notificationReference.sequenceNumber;
}

export interface NotificationOptions {
  /** http(s)://host:port[/base-path]: the socket is ws(s)://…/notifications */
  baseUrl: string;
  accessToken: string;
  onFrame: (frame: NotificationFrame) => void;
  /** The last sequenceNumber already processed (a restart of the app): resumes after it. */
  since?: number;
  /** Delay before reconnecting after the socket closed (ms). */
  reconnectDelayMs?: number;
  onStateChange?: (state: "open" | "closed") => void;
}

/**
 * The device's notification socket. It remembers the last sequenceNumber it handed to
 * onFrame and, when the connection drops, reconnects with since=<that number>: the engine
 * replays what was missed, so every notification arrives once, in order (contract §5).
 */
export class NotificationSocket {
  private ws?: WebSocket;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  lastSequence?: number;

  constructor(private readonly opts: NotificationOptions) {
    this.lastSequence = opts.since;
  }

  /** Resolves once the socket is open. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.opts.baseUrl.replace(/^http/, "ws").replace(/\/$/, "") + "/notifications");
      if (this.lastSequence !== undefined) url.searchParams.set("since", String(this.lastSequence));
      const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${this.opts.accessToken}` } });
      this.ws = ws;
      ws.on("open", () => {
        this.opts.onStateChange?.("open");
        resolve();
      });
      ws.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as NotificationFrame;
        const seq = sequenceOf(frame);
        if (this.lastSequence !== undefined && seq <= this.lastSequence) return;  // never twice
        this.lastSequence = seq;
        this.opts.onFrame(frame);
      });
      ws.on("error", (e) => reject(e));
      ws.on("close", () => {
        this.opts.onStateChange?.("closed");
        if (this.stopped) return;
        this.timer = setTimeout(() => void this.open().catch(() => undefined), this.opts.reconnectDelayMs ?? 500);
      });
    });
  }

  /** Drops the connection as a network failure would (the socket reconnects). */
  drop(): void {
    this.ws?.terminate();
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close();
  }
}
