// Herald's TypeScript client: typed calls to a Herald server's GraphQL API
// over fetch, and live feeds over graphql-ws that reconnect by themselves.

import { createClient, type Client as WSClient } from "graphql-ws";
import type * as G from "./generated/graphql.js";
import * as ops from "./operations.js";

export * from "./webhook.js";
export type {
  CreateEndpointInput,
  CreateEventTypeInput,
  CreateListenerInput,
  CreatePortalSessionInput,
  DeliveryChangeKind,
  DeliveryStatus,
  EndpointHealth,
  Ordering,
  PublishEventInput,
  UpdateEndpointInput,
} from "./generated/graphql.js";

/** An event as stored. */
export type Event = G.EventFieldsFragment;
/** An endpoint: where and how the app's events are delivered. */
export type Endpoint = G.EndpointFieldsFragment;
/** A delivery: one event to one endpoint. */
export type Delivery = G.DeliveryFieldsFragment;
/** One try of a delivery. */
export type Attempt = G.AttemptFieldsFragment;
/** A delivery with its attempts, oldest first. */
export type DeliveryDetail = Delivery & { attempts: Attempt[] };
/** One state change of a delivery, from the live feed. */
export type DeliveryChange = G.DeliveryUpdatedSubscription["deliveryUpdated"];
/** A change of an endpoint, from the live feed. */
export type EndpointChange = G.EndpointUpdatedSubscription["endpointUpdated"];
/** A newly published event, from the live feed. */
export type EventPublication = G.EventPublishedSubscription["eventPublished"];
/** The outcome of testEndpoint. */
export type TestResult = G.TestEndpointMutation["testEndpoint"];
/** An event type of the app's catalog. */
export type EventType = G.EventTypeFieldsFragment;
/** A listener's session and expiry (an endpoint of type LISTENER, opened by herald listen). */
export type Listener = NonNullable<Endpoint["listener"]>;
/** A delivery retryDeliveries did not queue again, with the code retryDelivery would have answered. */
export type RetryRefusal = G.RetryDeliveriesMutation["retryDeliveries"]["notRetried"][number];
/** A delivery pushed to a listen session: the request to forward, as Herald signed it. */
export type ListenerDelivery = NonNullable<G.ListenSubscription["listen"]["delivery"]>;

/** The local answer to a forwarded delivery; it becomes the attempt's outcome. */
export interface ListenerAnswer {
  /** The HTTP status; leave it out when there was no answer, and say why in error. */
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** How long the local request took (default: how long forward took). */
  durationMs?: number;
  /** Why there was no answer: connection refused, timeout, … */
  error?: string;
}

/** What a listen session does with what it receives. */
export interface ListenHandler {
  /** Forwards a delivery and returns the local answer. Called one at a time, in the order deliveries are pushed. */
  forward(d: ListenerDelivery): Promise<ListenerAnswer>;
  /** Told each time a session begins (after every reconnection) how many deliveries wait: it catches up on them first. */
  connected?(waiting: number): void;
  /** Told how each report went: err is set when Herald did not take it (the delivery is then pushed again). */
  reported?(d: ListenerDelivery, answer: ListenerAnswer, err?: HeraldError): void;
  /** The session ended for good: the listener was deleted, disabled or taken over by another session. */
  error?(e: HeraldError): void;
}

/** A customer-portal link. */
export type PortalSession = G.CreatePortalSessionMutation["createPortalSession"];

/** One page of a list. */
export interface Page<T> {
  items: T[];
  /** Every item the query matches, on all pages. */
  totalCount: number;
  hasNextPage: boolean;
  /** Pass as `after` for the next page. */
  endCursor: string | null;
}

/** One GraphQL error as the API sends it. */
export interface GraphQLErrorDetail {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; field?: string; reason?: string; [k: string]: unknown };
}

/**
 * An error the API answered with: code is its extensions.code
 * (BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT…), or
 * "HTTP" for an answer that is not GraphQL, or "NETWORK" when the server
 * could not be reached.
 */
export class HeraldError extends Error {
  readonly code: string;
  /** The input field at fault, if any. */
  readonly field?: string;
  readonly reason?: string;
  readonly status?: number;
  /** Every error of the response. */
  readonly errors: GraphQLErrorDetail[];
  constructor(message: string, code: string, opts: { field?: string; reason?: string; status?: number; errors?: GraphQLErrorDetail[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "HeraldError";
    this.code = code;
    this.field = opts.field;
    this.reason = opts.reason;
    this.status = opts.status;
    this.errors = opts.errors ?? [];
  }

  static fromGraphQL(errors: GraphQLErrorDetail[], status?: number): HeraldError {
    const first = errors[0];
    const ext = first?.extensions ?? {};
    return new HeraldError(errors.map((e) => e.message).join("; "), ext.code ?? "UNKNOWN", {
      field: ext.field,
      reason: ext.reason,
      status,
      errors,
    });
  }
}

/** The state of a live feed's connection. */
export type LiveStatus =
  | { state: "connecting" }
  | { state: "connected" }
  | { state: "disconnected"; error?: unknown; code?: number; reason?: string };

/** Options of a HeraldClient. */
export interface ClientOptions {
  /** Herald's base URL, such as "http://localhost:8080". */
  url: string;
  /** The API key (hrld_…). */
  apiKey: string;
  /** The app an admin key acts in (X-Herald-App). */
  app?: string;
  /** fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * The WebSocket class for live feeds (default: globalThis.WebSocket; on
   * Node 18 and 20 pass the ws package's, or run Node with
   * --experimental-websocket).
   */
  webSocketImpl?: unknown;
  /** How often live feeds ping the server, in ms (default 10000). A connection that answers no ping within that long again is dropped and reopened. */
  heartbeatMs?: number;
  /** The longest wait between reconnection tries, in ms (default 30000). */
  maxBackoffMs?: number;
  /** Told of every change of the live connection. */
  onLiveStatus?: (s: LiveStatus) => void;
}

/** What a live feed calls. */
export interface Sink<T> {
  next(value: T): void;
  /** The feed ended for good (a revoked key, a missing scope); absent: errors are thrown away. */
  error?(err: HeraldError): void;
}

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE = new Set([4400, 4401, 4403, 4406]);

function page<T>(conn: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: Array<{ node: T | null } | null> | null }): Page<T> {
  return {
    items: (conn.edges ?? []).flatMap((e) => (e?.node ? [e.node] : [])),
    totalCount: conn.totalCount,
    hasNextPage: conn.pageInfo.hasNextPage,
    endCursor: conn.pageInfo.endCursor,
  };
}

function typePattern(t?: string): { eventType?: string; eventTypePrefix?: string } {
  if (!t || t === "*") return {};
  return t.endsWith("*") ? { eventTypePrefix: t.slice(0, -1) } : { eventType: t };
}

function iso(t?: Date | string): string | undefined {
  return t === undefined ? undefined : typeof t === "string" ? t : t.toISOString();
}

/** Selects events or deliveries in a time range, newest first. */
export interface ListOptions {
  /** Page size (default 20, at most 100). */
  first?: number;
  after?: string;
  since?: Date | string;
  until?: Date | string;
}

/** A client of one Herald server as one API key. */
export class HeraldClient {
  readonly url: string;
  private readonly opts: ClientOptions;
  private readonly fetchImpl: typeof fetch;
  private ws?: WSClient;

  constructor(opts: ClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new HeraldError(`server URL ${JSON.stringify(opts.url)}: want http(s)://host[:port]`, "BAD_USER_INPUT");
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new HeraldError(`server URL ${JSON.stringify(opts.url)}: want http(s)://host[:port]`, "BAD_USER_INPUT");
    }
    if (!opts.apiKey) throw new HeraldError("no API key", "BAD_USER_INPUT");
    this.url = opts.url.replace(/\/+$/, "");
    this.opts = opts;
    const f = opts.fetch ?? globalThis.fetch;
    if (!f) throw new HeraldError("no fetch: pass one in the options", "BAD_USER_INPUT");
    this.fetchImpl = f.bind(globalThis);
  }

  /** Sends one operation and returns its data, or throws a HeraldError. */
  async request<TData, TVars extends object = Record<string, never>>(query: string, variables?: TVars, signal?: AbortSignal): Promise<TData> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      Authorization: `Bearer ${this.opts.apiKey}`,
    };
    if (this.opts.app) headers["X-Herald-App"] = this.opts.app;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.url}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }), signal });
    } catch (e) {
      throw new HeraldError(`cannot reach herald at ${this.url}: ${(e as Error).message}`, "NETWORK", { cause: e });
    }
    const text = await res.text();
    let body: { data?: TData | null; errors?: GraphQLErrorDetail[] };
    try {
      body = JSON.parse(text);
    } catch {
      throw new HeraldError(`${this.url} answered HTTP ${res.status}, not a GraphQL response: is it a Herald server?`, "HTTP", { status: res.status });
    }
    if (body.errors?.length) throw HeraldError.fromGraphQL(body.errors, res.status);
    if (body.data == null) throw new HeraldError(`${this.url} answered HTTP ${res.status} without data`, "HTTP", { status: res.status });
    return body.data;
  }

  /** The caller: its key and the app it acts in. */
  async viewer(): Promise<G.ViewerQuery["viewer"]> {
    return (await this.request<G.ViewerQuery>(ops.Viewer)).viewer;
  }

  /** Publishes an event to every active endpoint subscribed to its type. */
  async publish(input: G.PublishEventInput): Promise<Event> {
    return (await this.request<G.PublishEventMutation, G.PublishEventMutationVariables>(ops.PublishEvent, { input })).publishEvent;
  }

  /** Publishes up to 100 events in one transaction: all or none. */
  async publishMany(input: G.PublishEventInput[]): Promise<Event[]> {
    return (await this.request<G.PublishEventsMutation, G.PublishEventsMutationVariables>(ops.PublishEvents, { input })).publishEvents;
  }

  /** An event by ID. */
  async event(id: string): Promise<Event> {
    const r = await this.request<G.GetEventQuery, G.GetEventQueryVariables>(ops.GetEvent, { id });
    const n = r.events.edges?.[0]?.node;
    if (!n) throw new HeraldError(`event ${JSON.stringify(id)} not found`, "NOT_FOUND");
    return n;
  }

  /** Events, newest first; eventType may be a pattern such as "order.*". */
  async events(q: ListOptions & { eventType?: string } = {}): Promise<Page<Event>> {
    const r = await this.request<G.ListEventsQuery, G.ListEventsQueryVariables>(ops.ListEvents, {
      first: q.first ?? 20,
      after: q.after,
      ...typePattern(q.eventType),
      since: iso(q.since),
      until: iso(q.until),
    });
    return page(r.events);
  }

  /** The app's endpoints, oldest first. */
  async endpoints(q: { first?: number; after?: string; isActive?: boolean } = {}): Promise<Page<Endpoint>> {
    const r = await this.request<G.ListEndpointsQuery, G.ListEndpointsQueryVariables>(ops.ListEndpoints, { first: q.first ?? 20, after: q.after, isActive: q.isActive });
    return page(r.endpoints);
  }

  /** An endpoint by ID. */
  async endpoint(id: string): Promise<Endpoint> {
    const r = await this.request<G.GetEndpointQuery, G.GetEndpointQueryVariables>(ops.GetEndpoint, { id });
    const n = r.endpoints.edges?.[0]?.node;
    if (!n) throw new HeraldError(`endpoint ${JSON.stringify(id)} not found`, "NOT_FOUND");
    return n;
  }

  /** Creates an endpoint; its signing secret is returned only here. */
  async createEndpoint(input: G.CreateEndpointInput): Promise<{ endpoint: Endpoint; secret: string }> {
    return (await this.request<G.CreateEndpointMutation, G.CreateEndpointMutationVariables>(ops.CreateEndpoint, { input })).createEndpoint;
  }

  /** Changes an endpoint: omitted fields stay; filter or rateLimit null removes them. */
  async updateEndpoint(id: string, input: G.UpdateEndpointInput): Promise<Endpoint> {
    return (await this.request<G.UpdateEndpointMutation, G.UpdateEndpointMutationVariables>(ops.UpdateEndpoint, { id, input })).updateEndpoint;
  }

  /** Makes an endpoint active again. */
  enableEndpoint(id: string): Promise<Endpoint> {
    return this.updateEndpoint(id, { isActive: true });
  }

  /** Stops deliveries to an endpoint. */
  disableEndpoint(id: string): Promise<Endpoint> {
    return this.updateEndpoint(id, { isActive: false });
  }

  /** Deletes an endpoint; its deliveries stay in the logs. */
  async deleteEndpoint(id: string): Promise<void> {
    await this.request<G.DeleteEndpointMutation, G.DeleteEndpointMutationVariables>(ops.DeleteEndpoint, { id });
  }

  /** Replaces an endpoint's signing secret; the previous one also signs for overlap (default "24h"). */
  async rotateEndpointSecret(id: string, overlap?: string): Promise<{ endpoint: Endpoint; secret: string }> {
    return (await this.request<G.RotateEndpointSecretMutation, G.RotateEndpointSecretMutationVariables>(ops.RotateEndpointSecret, { id, overlap })).rotateEndpointSecret;
  }

  /** Sends one event (test.ping by default) to an endpoint now and reports the outcome. */
  async testEndpoint(id: string, opts: { eventType?: string; payload?: unknown } = {}): Promise<TestResult> {
    return (await this.request<G.TestEndpointMutation, G.TestEndpointMutationVariables>(ops.TestEndpoint, { id, input: { eventType: opts.eventType, payload: opts.payload } })).testEndpoint;
  }

  /** Deliveries, newest first. */
  async deliveries(q: ListOptions & { endpointID?: string; eventID?: string; eventType?: string; status?: G.DeliveryStatus } = {}): Promise<Page<Delivery>> {
    const r = await this.request<G.ListDeliveriesQuery, G.ListDeliveriesQueryVariables>(ops.ListDeliveries, {
      first: q.first ?? 20,
      after: q.after,
      endpointID: q.endpointID,
      eventID: q.eventID,
      eventType: q.eventType,
      status: q.status,
      since: iso(q.since),
      until: iso(q.until),
    });
    return page(r.deliveries);
  }

  /** A delivery with its attempts. */
  async delivery(id: string): Promise<DeliveryDetail> {
    const r = await this.request<G.GetDeliveryQuery, G.GetDeliveryQueryVariables>(ops.GetDelivery, { id });
    const n = r.deliveries.edges?.[0]?.node;
    if (!n) throw new HeraldError(`delivery ${JSON.stringify(id)} not found`, "NOT_FOUND");
    const { attempts, ...d } = n;
    return { ...d, attempts: (attempts.edges ?? []).flatMap((e) => (e?.node ? [e.node] : [])) };
  }

  /** Queues another attempt of a delivery now. */
  async retryDelivery(id: string): Promise<Delivery> {
    return (await this.request<G.RetryDeliveryMutation, G.RetryDeliveryMutationVariables>(ops.RetryDelivery, { id })).retryDelivery;
  }

  /** Queues another attempt of each of up to 100 deliveries now; those it could not are listed with why. */
  async retryDeliveries(ids: string[]): Promise<{ deliveries: Delivery[]; notRetried: RetryRefusal[] }> {
    return (await this.request<G.RetryDeliveriesMutation, G.RetryDeliveriesMutationVariables>(ops.RetryDeliveries, { ids })).retryDeliveries;
  }

  /** Queues again an endpoint's deliveries with the status (FAILED by default) created since a time; returns how many. */
  async replayDeliveries(endpointID: string, since: Date | string, status?: G.DeliveryStatus): Promise<number> {
    const r = await this.request<G.ReplayDeliveriesMutation, G.ReplayDeliveriesMutationVariables>(ops.ReplayDeliveries, { endpointID, input: { since: iso(since)!, status } });
    return r.replayDeliveries.count;
  }

  /**
   * Opens the customer portal: a link with a scoped, expiring token. The app
   * (input.appId, for admin keys) is sent as createPortalSession's appId
   * argument.
   */
  async createPortalSession(input: G.CreatePortalSessionInput = {}): Promise<PortalSession> {
    const { appId, ...rest } = input;
    return (await this.request<G.CreatePortalSessionMutation, G.CreatePortalSessionMutationVariables>(ops.CreatePortalSession, { appID: appId, input: rest })).createPortalSession;
  }

  /** Ends a portal session at once (its id is PortalSession.apiKey.id), closing its live connections. */
  async revokePortalSession(id: string): Promise<void> {
    await this.request<G.RevokePortalSessionMutation, G.RevokePortalSessionMutationVariables>(ops.RevokePortalSession, { id });
  }

  /** Ends every working portal session of an app (default: the key's own); returns how many. */
  async revokePortalSessions(appID?: string): Promise<number> {
    return (await this.request<G.RevokePortalSessionsMutation, G.RevokePortalSessionsMutationVariables>(ops.RevokePortalSessions, { appID })).revokePortalSessions.count;
  }

  /** The app's catalog of event types, by name. */
  async eventTypes(q: ListOptions = {}): Promise<Page<EventType>> {
    const r = await this.request<G.ListEventTypesQuery, G.ListEventTypesQueryVariables>(ops.ListEventTypes, { first: q.first ?? 20, after: q.after });
    return page(r.eventTypes);
  }

  /** An event type of the catalog, by name. */
  async eventType(name: string): Promise<EventType> {
    const r = await this.request<G.ListEventTypesQuery, G.ListEventTypesQueryVariables>(ops.ListEventTypes, { first: 1, name });
    const n = r.eventTypes.edges?.[0]?.node;
    if (!n) throw new HeraldError(`event type ${JSON.stringify(name)} is not in the app's catalog`, "NOT_FOUND");
    return n;
  }

  /** Adds a type to the catalog, with an optional description, example payload and JSON Schema. */
  async createEventType(input: G.CreateEventTypeInput): Promise<EventType> {
    return (await this.request<G.CreateEventTypeMutation, G.CreateEventTypeMutationVariables>(ops.CreateEventType, { input })).createEventType;
  }

  /** Archives a type (by id): it can no longer be published. */
  async archiveEventType(id: string): Promise<EventType> {
    return (await this.request<G.ArchiveEventTypeMutation, G.ArchiveEventTypeMutationVariables>(ops.ArchiveEventType, { id })).archiveEventType;
  }

  /** Brings an archived type back. */
  async unarchiveEventType(id: string): Promise<EventType> {
    return (await this.request<G.UnarchiveEventTypeMutation, G.UnarchiveEventTypeMutationVariables>(ops.UnarchiveEventType, { id })).unarchiveEventType;
  }

  /**
   * Opens a listener: a temporary endpoint whose deliveries go over a listen
   * subscription (what herald listen holds) instead of HTTP. Returns it
   * with its signing secret.
   */
  async createListener(input: G.CreateListenerInput): Promise<{ endpoint: Endpoint; secret: string }> {
    return (await this.request<G.CreateListenerMutation, G.CreateListenerMutationVariables>(ops.CreateListener, { input })).createListener;
  }

  /**
   * Holds a listener (see createListener) and hands each of its deliveries
   * to handler.forward, one at a time; each answer is reported on the same
   * live connection and recorded as the attempt, and failures are retried by
   * Herald with the listener's retry policy. The connection reconnects by
   * itself; deliveries wait while it is down and come first, in order, on
   * the next session. Returns a function that stops listening.
   */
  listen(listenerID: string, handler: ListenHandler): () => void {
    let queue = Promise.resolve();
    const forward = async (d: ListenerDelivery) => {
      const start = Date.now();
      let answer: ListenerAnswer;
      try {
        answer = await handler.forward(d);
      } catch (e) {
        answer = { error: e instanceof Error ? e.message : String(e) };
      }
      const input: G.ListenerReportInput = {
        listenerId: listenerID,
        deliveryId: d.deliveryId,
        token: d.token,
        status: answer.status ?? null,
        body: answer.body,
        headers: answer.headers && Object.entries(answer.headers).map(([name, value]) => ({ name, value })),
        durationMs: Math.round(answer.durationMs ?? Date.now() - start),
        error: answer.status ? answer.error : (answer.error ?? "no answer"),
      };
      try {
        await this.overLive<G.ReportListenerDeliveryMutation>(ops.ReportListenerDelivery, { input });
        handler.reported?.(d, answer);
      } catch (e) {
        handler.reported?.(d, answer, toHeraldError(e));
      }
    };
    return this.subscribe<G.ListenSubscription>(
      ops.Listen,
      { listenerId: listenerID },
      ({ listen: m }) => {
        if (m.kind === "CONNECTED") handler.connected?.(m.waiting ?? 0);
        else if (m.delivery) {
          const d = m.delivery;
          queue = queue.then(() => forward(d));
        }
      },
      handler.error,
    );
  }

  /**
   * Follows every state change of the app's deliveries that the filter
   * selects. Returns a function that stops the feed. The connection
   * reconnects by itself with backoff, and a connection that misses its
   * heartbeat is dropped and reopened; changes made while disconnected
   * are not replayed.
   */
  subscribeDeliveries(filter: { endpointID?: string; eventType?: string; status?: G.DeliveryStatus }, sink: Sink<DeliveryChange>): () => void {
    return this.subscribe<G.DeliveryUpdatedSubscription>(ops.DeliveryUpdated, filter, (d) => sink.next(d.deliveryUpdated), sink.error);
  }

  /** Follows changes of the app's endpoints (of one, with endpointID). */
  subscribeEndpoints(filter: { endpointID?: string }, sink: Sink<EndpointChange>): () => void {
    return this.subscribe<G.EndpointUpdatedSubscription>(ops.EndpointUpdated, filter, (d) => sink.next(d.endpointUpdated), sink.error);
  }

  /** Follows newly published events (of a type or pattern such as "order.*"). */
  subscribeEvents(filter: { eventType?: string }, sink: Sink<EventPublication>): () => void {
    return this.subscribe<G.EventPublishedSubscription>(ops.EventPublished, filter, (d) => sink.next(d.eventPublished), sink.error);
  }

  /** Closes the live connection. */
  async close(): Promise<void> {
    await this.ws?.dispose();
    this.ws = undefined;
  }

  private subscribe<T>(query: string, variables: object, next: (d: T) => void, error?: (e: HeraldError) => void): () => void {
    return this.live().subscribe<T>(
      { query, variables: variables as Record<string, unknown> },
      {
        next: (r) => {
          if (r.errors?.length) error?.(HeraldError.fromGraphQL(r.errors as GraphQLErrorDetail[]));
          else if (r.data) next(r.data as T);
        },
        error: (e) => error?.(toHeraldError(e)),
        complete: () => {},
      },
    );
  }

  /** Runs one operation on the live connection (a listen session's reports must go there) and returns its data. */
  private overLive<T>(query: string, variables: object): Promise<T> {
    return new Promise((resolve, reject) => {
      let data: T | undefined;
      this.live().subscribe<T>(
        { query, variables: variables as Record<string, unknown> },
        {
          next: (r) => {
            if (r.errors?.length) reject(HeraldError.fromGraphQL(r.errors as GraphQLErrorDetail[]));
            else data = r.data as T;
          },
          error: (e) => reject(toHeraldError(e)),
          complete: () => (data === undefined ? reject(new HeraldError("the operation ended without data", "HTTP")) : resolve(data)),
        },
      );
    });
  }

  /** The shared live connection, opened on first use and closed when no feed is left. */
  private live(): WSClient {
    if (this.ws) return this.ws;
    const heartbeat = this.opts.heartbeatMs ?? 10_000;
    const maxBackoff = this.opts.maxBackoffMs ?? 30_000;
    const status = this.opts.onLiveStatus ?? (() => {});
    let pongTimer: ReturnType<typeof setTimeout> | undefined;
    const params: Record<string, string> = { Authorization: `Bearer ${this.opts.apiKey}` };
    if (this.opts.app) params["X-Herald-App"] = this.opts.app;
    const client: WSClient = createClient({
      url: this.url.replace(/^http/, "ws") + "/graphql",
      connectionParams: params,
      webSocketImpl: this.opts.webSocketImpl,
      lazy: true,
      keepAlive: heartbeat,
      retryAttempts: Number.MAX_SAFE_INTEGER,
      retryWait: async (retries) => {
        const d = Math.min(maxBackoff, 500 * 2 ** retries);
        await new Promise((r) => setTimeout(r, d / 2 + Math.random() * (d / 2)));
      },
      shouldRetry: (e) => !(isCloseEvent(e) && FATAL_CLOSE.has(e.code)),
      on: {
        connecting: () => status({ state: "connecting" }),
        connected: () => status({ state: "connected" }),
        closed: (e) => {
          clearTimeout(pongTimer);
          status(isCloseEvent(e) ? { state: "disconnected", code: e.code, reason: e.reason } : { state: "disconnected", error: e });
        },
        ping: (received) => {
          // A ping we sent starts a clock that only a pong stops.
          if (!received) pongTimer = setTimeout(() => client.terminate(), heartbeat);
        },
        pong: (received) => {
          if (received) clearTimeout(pongTimer);
        },
      },
    });
    this.ws = client;
    return client;
  }
}

function isCloseEvent(e: unknown): e is { code: number; reason: string } {
  return typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "number";
}

function toHeraldError(e: unknown): HeraldError {
  if (e instanceof HeraldError) return e;
  if (Array.isArray(e)) return HeraldError.fromGraphQL(e as GraphQLErrorDetail[]);
  if (isCloseEvent(e)) {
    const code = e.code === 4401 ? "UNAUTHENTICATED" : e.code === 4403 ? "FORBIDDEN" : "BAD_USER_INPUT";
    return new HeraldError(e.reason || `connection closed (${e.code})`, code);
  }
  return new HeraldError(String((e as Error)?.message ?? e), "NETWORK", { cause: e });
}
