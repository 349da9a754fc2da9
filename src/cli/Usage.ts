/**
 * `spawnkit usage` as text: a table of spend per task, engine and agent type, each task against its caps, the total,
 * and the engines behind a provider's usage limit.
 */
import { formatCaps, formatSpend, formatUsd, type UsageReport } from "../budget/Spend.js"
import type { Wall } from "../host/UsageWalls.js"

export { usageReport } from "../budget/Spend.js"

const pad = (cells: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
}

/** The report as text. */
export const renderUsage = (report: UsageReport & { readonly usage_limits: ReadonlyArray<Wall> }, nowMs: number) => {
  if (report.rows.length === 0 && report.usage_limits.length === 0) return "no agents yet"
  const header = ["TASK", "ENGINE", "TYPE", "AGENTS", "INPUT", "CACHE W", "CACHE R", "OUTPUT", "COST"]
  const rows = report.rows.map((r) => [
    r.task_id,
    r.engine,
    r.agent_type,
    String(r.agents),
    String(r.tokens.input),
    String(r.tokens.cache_creation),
    String(r.tokens.cache_read),
    String(r.tokens.output),
    `${r.estimated ? "~" : ""}${formatUsd(r.cost_usd)}`
  ])
  const lines = [...pad([header, ...rows])]
  for (const task of report.tasks) {
    const caps = formatCaps(task)
    if (caps !== "") lines.push(`${task.task_id}: spent ${formatSpend(task)} of budget ${caps}`)
  }
  lines.push(`total: ${formatSpend(report.total)}${report.total.estimated ? "  (~ estimated from prices)" : ""}`)
  for (const wall of report.usage_limits) {
    const seconds = Math.max(0, Math.ceil((Date.parse(wall.resets_at) - nowMs) / 1000))
    lines.push(`usage limit: ${wall.engine} spawns refused until ${wall.resets_at} (${seconds} s): ${wall.reason}`)
  }
  return lines.join("\n")
}
