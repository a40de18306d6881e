// Types for notify-client.js (the events of shared/DESIGN.md's wire contract).
export type ConnectionState = "live" | "live (sse)" | "live (ws)" | "reconnecting" | "polling fallback" | "offline";
export type Severity = "critical" | "major" | "minor" | "warning" | "info";

// every event may carry more than the fields named here (the dashboard reads them)
interface Base { id: string | null; type: string; tenant_id: string; timestamp: string; [k: string]: any }
export interface IncidentAlert extends Base {
  type: "incident_alert"; site_id?: string; priority: Severity; requires_acknowledgment: boolean;
  incident: { incident_id: string; title: string; description: string; severity: Severity; site_id: string | null; [k: string]: unknown };
}
export interface ThresholdBreach {
  rule_id: string; kpi: string; level: "warning" | "critical" | "ok" | "no_data"; value: number | null;
  threshold: number | null; direction: "above" | "below"; unit: string; since: string; previous_state: string;
}
export interface KpiUpdate extends Base { type: "kpi_update"; site_id: string; kpi_data: Record<string, number | string | boolean> & { threshold_breach: boolean }; threshold_breach?: ThresholdBreach[] }
export interface SiteStatus extends Base { type: "site_status"; site_id: string; status: "up" | "down" | "degraded" | "maintenance"; details?: Record<string, unknown> }
export interface SystemNotification extends Base { type: "system_notification"; title: string; message: string; priority: "info" | "warning" | "error" | "critical" }
export interface Escalation extends Base { type: "escalation"; incident_id: string; level: number; cycle: number; targets: Record<string, unknown>[]; site_id?: string }
export interface IncidentUpdate extends Base { type: "incident_update"; incident_id: string; status: "acknowledged" | "resolved"; by: string; site_id?: string }
export interface SyncComplete extends Base { type: "sync_complete"; recovered: boolean; replayed: number; reason?: string; epoch: string | null }
export interface ConnectionEstablished extends Base { type: "connection_established"; user_id: string; roles: string[]; sites: string[] | null; transport: string; epoch: string | null }

export interface EventMap {
  incident_alert: IncidentAlert; kpi_update: KpiUpdate; site_status: SiteStatus;
  system_notification: SystemNotification; escalation: Escalation; incident_update: IncidentUpdate;
  sync_complete: SyncComplete; connection_established: ConnectionEstablished; auth_failed: Error;
  presence: Base & { count: number; users: { user_id: string }[] }; incident_viewers: Base & { incident_id: string; viewers: { user_id: string }[] };
  connect: null;
  // recovered: false: reload the open incidents (GET /api/v1/incidents) and KPI snapshot
  reload: SyncComplete;
}
export interface Ack { ok: boolean; error?: string; [k: string]: unknown }

export interface NotifyClient {
  on<K extends keyof EventMap>(name: K, fn: (ev: EventMap[K]) => void): () => void;
  onState(fn: (s: ConnectionState) => void): () => void;
  readonly state: ConnectionState;
  readonly lastId: string | null;
  readonly epoch: string | null;
  readonly transport: "socketio" | "ws" | "sse";
  subscribeKpis(siteIds: string[]): Promise<Ack & { granted: string[]; denied: string[]; snapshot: Record<string, { kpi_data: Record<string, number>; id: string; timestamp: string }> }>;
  action(incidentId: string, action: string, extra?: { note?: string; minutes?: number }): Promise<Ack>;
  /** Any client event (view_incident, comment, ...), answered as the server answers it. */
  emit(name: string, data?: object): Promise<Ack & Record<string, any>>;
  close(): void;
  socket?: any;
}
/** A token, or a function giving the current one (a renewed sign-in). */
export type TokenSource = string | (() => string);
export interface Storage { getItem(k: string): string | null; setItem(k: string, v: string): void; removeItem?(k: string): void }
interface Common {
  token: TokenSource;
  storage?: Storage;
  /** Keys of the resume point: `<prefix>.last_id`, `<prefix>.epoch` (default `towerco.<tenant>`). */
  storagePrefix?: string;
}
export function createNotifyClient(opts: Common & {
  io: (url: string, opts: object) => any; url: string;
  transports?: ("websocket" | "polling")[]; maxBackoffMs?: number;
}): NotifyClient;
export function createSseClient(opts: Common & {
  url?: string; kpiSites?: string[]; EventSource?: any; fetch?: typeof fetch;
}): NotifyClient;
export function createWsClient(opts: Common & {
  url: string; WebSocket?: any; maxBackoffMs?: number;
}): NotifyClient;
/** A token's claims, unverified (the server verifies): tenant_id, sub, roles... */
export function claimsOf(token: string): Record<string, any>;
export function useNotifications<K extends keyof EventMap>(
  React: any, client: NotifyClient, names: K[], limit?: number,
): { state: ConnectionState; events: EventMap[K][] };
