// Types for notify-client.js (the events of shared/DESIGN.md's wire contract).
export type ConnectionState = "live" | "live (sse)" | "reconnecting" | "polling fallback" | "offline";
export type Severity = "critical" | "major" | "minor" | "warning" | "info";

interface Base { id: string; type: string; tenant_id: string; timestamp: string }
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
  subscribeKpis(siteIds: string[]): Promise<Ack & { granted: string[]; denied: string[]; snapshot: Record<string, { kpi_data: Record<string, number>; id: string; timestamp: string }> }>;
  action(incidentId: string, action: "acknowledge" | "resolve"): Promise<Ack>;
  close(): void;
  socket?: unknown;
}
export function createNotifyClient(opts: {
  io: (url: string, opts: object) => unknown; url: string; token: string;
  storage?: { getItem(k: string): string | null; setItem(k: string, v: string): void };
  transports?: ("websocket" | "polling")[]; maxBackoffMs?: number;
}): NotifyClient;
export function createSseClient(opts: {
  url?: string; token: string; kpiSites?: string[];
  storage?: { getItem(k: string): string | null; setItem(k: string, v: string): void };
  EventSource?: unknown; fetch?: typeof fetch;
}): NotifyClient;
export function useNotifications<K extends keyof EventMap>(
  React: unknown, client: NotifyClient, names: K[], limit?: number,
): { state: ConnectionState; events: EventMap[K][] };
