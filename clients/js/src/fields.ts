import {
  FIELD_IDS,
  type CacheRetention,
  type CacheRetentionSetting,
  type Savings,
  type SurfaceField,
  type SurfaceFieldById,
  type WarmCost,
  type WarmingStatus,
} from "./contract.gen.js";

/** The surface's fields keyed by id; throws if the server left one out (the contract sends all). */
export function fieldsById(fields: readonly SurfaceField[]): SurfaceFieldById {
  const byId: Partial<Record<string, SurfaceField>> = {};
  for (const field of fields) byId[field.id] = field;
  const missing = FIELD_IDS.filter((id) => byId[id] === undefined);
  if (missing.length > 0) throw new Error(`surface fields missing: ${missing.join(", ")}`);
  return byId as unknown as SurfaceFieldById;
}

/** The cache-warming panel's state, read from a `surface` spec's or an `update`'s fields. */
export interface WarmingPanel {
  readonly enabled: boolean;
  readonly intervalSeconds: number;
  readonly minIntervalSeconds: number;
  readonly maxIntervalSeconds: number;
  readonly nextWarmAt: number | null;
  readonly lastWarmAt: number | null;
  /** When the cache expires unless a warm or a turn refreshes it first; null while nothing is cached. */
  readonly cacheExpiresAt: number | null;
  /** Warms still to come before the idle pause if no turn comes first; null before the first sealed turn. */
  readonly warmsLeft: number | null;
  /** What an hour of warming costs at the current interval; null before the first sealed turn. */
  readonly costPerHourUsd: number | null;
  readonly status: WarmingStatus;
  readonly lastCachePct: number | null;
  /** The cache in use, what the conversation was created with, and why this cache. */
  readonly retention: CacheRetention;
  readonly retentionSetting: CacheRetentionSetting;
  readonly retentionReason: string;
  readonly cost: WarmCost;
  readonly savings: Savings;
}

export function readPanel(fields: readonly SurfaceField[]): WarmingPanel {
  const f = fieldsById(fields);
  return {
    enabled: f.enabled.value,
    intervalSeconds: f.interval.value,
    minIntervalSeconds: f.interval.min,
    maxIntervalSeconds: f.interval.max,
    nextWarmAt: f.timer.value.nextWarmAt,
    lastWarmAt: f.timer.value.lastWarmAt,
    cacheExpiresAt: f.timer.value.cacheExpiresAt,
    warmsLeft: f.timer.value.warmsLeft,
    costPerHourUsd: f.interval.costPerHourUsd,
    status: f.status.value,
    lastCachePct: f["last-cache-pct"].value,
    retention: f["cache-retention"].value,
    retentionSetting: f["cache-retention"].setting,
    retentionReason: f["cache-retention"].reason,
    cost: f["warm-cost"].value,
    savings: f.savings.value,
  };
}
