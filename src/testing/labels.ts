/**
 * Staging-label moves on a secret's versions, as pure functions on a copy of the label map
 * (versionId -> labels), so an operation can be checked before it is committed.
 * Labels are kept sorted, as AWS lists them (e.g. ["AWSCURRENT", "AWSPENDING"]).
 */
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS } from '../secrets';

export type StageMap = Map<string, string[]>;

/** The version a label is attached to (a label is on at most one version). */
export function holderOf(map: StageMap, label: string): string | undefined {
  for (const [id, stages] of map) if (stages.includes(label)) return id;
  return undefined;
}

export function addLabel(map: StageMap, id: string, label: string): void {
  const stages = map.get(id) ?? [];
  if (!stages.includes(label)) map.set(id, [...stages, label].sort());
}

export function removeLabel(map: StageMap, id: string, label: string): void {
  const stages = map.get(id);
  if (stages) map.set(id, stages.filter((s) => s !== label));
}

/**
 * Attach `label` to `target`, taking it from whichever version holds it. Moving AWSCURRENT moves
 * AWSPREVIOUS to the version AWSCURRENT left. When a new value takes AWSCURRENT (PutSecretValue,
 * UpdateSecret), an AWSPENDING sharing the old AWSCURRENT version goes too (AWS-validated trace);
 * UpdateSecretVersionStage never touches AWSPENDING.
 */
export function attachLabel(map: StageMap, label: string, target: string, dropPendingFromOldCurrent: boolean): void {
  const holder = holderOf(map, label);
  if (holder === target) return;
  if (holder !== undefined) removeLabel(map, holder, label);
  addLabel(map, target, label);
  if (label === AWSCURRENT && holder !== undefined) {
    const previous = holderOf(map, AWSPREVIOUS);
    if (previous !== undefined) removeLabel(map, previous, AWSPREVIOUS);
    addLabel(map, holder, AWSPREVIOUS);
    if (dropPendingFromOldCurrent) removeLabel(map, holder, AWSPENDING);
  }
}

export function countLabels(map: StageMap): number {
  return [...map.values()].reduce((n, stages) => n + stages.length, 0);
}
