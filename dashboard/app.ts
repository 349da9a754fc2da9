/**
 * spawnkit's dashboard in the browser: plain TypeScript and the DOM, no library (the page is small: a table per task,
 * two panes). Bundled by esbuild into dist/dashboard/app.js and served by `serve --http`.
 *
 * Live without polling: it follows the event stream (`/events`, Server-Sent Events read through fetch so the cookie
 * session goes with it, resumed with Last-Event-ID after a drop) and reads the state again on each event; a selected
 * agent's output comes as its own stream (`/api/output`).
 */

interface Usage {
  readonly tokens?: {
    readonly input: number
    readonly output: number
    readonly cache_creation: number
    readonly cache_read: number
  }
  readonly cost_usd?: number
}
interface AgentRecord {
  readonly id: string
  readonly type: string
  readonly parent: string
  readonly status: string
  readonly started_at: string
  readonly completed_at?: string | null
  readonly engine?: string
  readonly exit?: { readonly exit_code: number }
  readonly reason?: string
  readonly usage?: Usage
}
interface TaskState {
  readonly task_id: string
  readonly task_description: string
  readonly active_count: number
  readonly total_spawned: number
  readonly max_concurrent: number
  readonly max_agents: number
  readonly max_cost_usd?: number
  readonly max_tokens?: number
  readonly agents: ReadonlyArray<AgentRecord>
  readonly work: Readonly<Record<string, string>>
}
interface State {
  readonly tasks: ReadonlyArray<TaskState>
  readonly now: number
  readonly csrf?: string
}

const ACTIVE = new Set(["reserved", "running"])
const $ = (id: string) => document.getElementById(id)!

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<{ text: string; className: string; title: string }> = {},
  ...children: ReadonlyArray<Node>
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag)
  if (props.text !== undefined) node.textContent = props.text
  if (props.className !== undefined) node.className = props.className
  if (props.title !== undefined) node.title = props.title
  node.append(...children)
  return node
}

// ---------------------------------------------------------------------------------------------------------------------
// Login: the credential goes in a POST body, never in a URL; one given in the fragment is taken out of the address.

const login = async (token: string) => {
  const res = await fetch("/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token })
  })
  if (res.ok) return location.replace("/")
  $("login-error").textContent = `${res.status}: ${await res.text()}`
}

const startLogin = () => {
  const fromFragment = /^#token=(.+)$/.exec(location.hash)?.[1]
  if (fromFragment !== undefined) {
    history.replaceState(null, "", location.pathname)
    void login(decodeURIComponent(fromFragment))
  }
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault()
    void login(($("token") as HTMLInputElement).value)
  })
}

// ---------------------------------------------------------------------------------------------------------------------
// The dashboard.

let state: State | undefined
let selected: { readonly task: string; readonly agent: string } | undefined
let outputAbort: AbortController | undefined
let refreshTimer: number | undefined

const age = (from: string, to: number) => {
  const s = Math.max(0, Math.round((to - Date.parse(from)) / 1000))
  return s < 60
    ? `${s}s`
    : s < 3600
    ? `${Math.floor(s / 60)}m${s % 60}s`
    : `${Math.floor(s / 3600)}h${Math.floor(s % 3600 / 60)}m`
}

const tokensOf = (u: Usage | undefined) =>
  u?.tokens === undefined ? 0 : u.tokens.input + u.tokens.output + u.tokens.cache_creation + u.tokens.cache_read

const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`

/** The agents in tree order (each after its parent), with their depth below the task. */
const treeOf = (agents: ReadonlyArray<AgentRecord>) => {
  const ids = new Set(agents.map((a) => a.id))
  const children = new Map<string, Array<AgentRecord>>()
  for (const a of agents) {
    const parent = ids.has(a.parent) ? a.parent : ""
    children.set(parent, [...(children.get(parent) ?? []), a])
  }
  const out: Array<{ agent: AgentRecord; depth: number }> = []
  const walk = (parent: string, depth: number) => {
    for (const a of children.get(parent) ?? []) {
      out.push({ agent: a, depth })
      walk(a.id, depth + 1)
    }
  }
  walk("", 0)
  return out
}

const killButton = (task: string, agent: string, cascade: boolean) => {
  const button = el("button", { text: cascade ? "Kill tree" : "Kill" })
  button.dataset["kill"] = `${agent}${cascade ? ":cascade" : ""}`
  button.addEventListener("click", async (e) => {
    e.stopPropagation()
    if (!confirm(cascade ? `Kill ${agent} and every agent below it?` : `Kill ${agent}?`)) return
    const res = await fetch("/api/kill", {
      method: "POST",
      headers: { "content-type": "application/json", "x-spawnkit-csrf": state?.csrf ?? "" },
      body: JSON.stringify({ task_id: task, agent_id: agent, cascade })
    })
    if (!res.ok) alert(`Kill refused: ${await res.text()}`)
  })
  return button
}

const renderTask = (task: TaskState, now: number) => {
  const spentUsd = task.agents.reduce((s, a) => s + (a.usage?.cost_usd ?? 0), 0)
  const spentTokens = task.agents.reduce((s, a) => s + tokensOf(a.usage), 0)
  const caps = [
    task.max_cost_usd !== undefined ? `${usd(spentUsd)} of ${usd(task.max_cost_usd)}` : `${usd(spentUsd)} spent`,
    task.max_tokens !== undefined ? `${spentTokens} of ${task.max_tokens} tokens` : `${spentTokens} tokens`
  ]
  const over = (task.max_cost_usd !== undefined && spentUsd >= task.max_cost_usd) ||
    (task.max_tokens !== undefined && spentTokens >= task.max_tokens)
  const rows = treeOf(task.agents).map(({ agent: a, depth }) => {
    const row = el(
      "tr",
      { className: `agent${selected?.agent === a.id ? " selected" : ""}` },
      el("td", { text: `${"  ".repeat(depth)}${depth > 0 ? "└ " : ""}${a.id}` }),
      el("td", { text: a.type }),
      el("td", { text: a.status, className: `status-${a.status}` }),
      el("td", { text: age(a.started_at, a.completed_at ? Date.parse(a.completed_at) : now) }),
      el("td", { text: a.engine ?? "" }),
      el("td", { text: a.exit !== undefined ? `exit ${a.exit.exit_code}` : "", title: a.reason ?? "" }),
      el("td", { text: a.reason ?? "" }),
      el("td", { text: a.usage !== undefined ? `${tokensOf(a.usage)} / ${usd(a.usage.cost_usd ?? 0)}` : "" }),
      el("td", { text: task.work[a.id] ?? "" }),
      el(
        "td",
        {},
        ...(ACTIVE.has(a.status) ? [killButton(task.task_id, a.id, false), killButton(task.task_id, a.id, true)] : [])
      )
    )
    row.dataset["agent"] = a.id
    row.dataset["status"] = a.status
    row.addEventListener("click", () => select(task.task_id, a.id))
    return row
  })
  const head = el(
    "tr",
    {},
    ...["agent", "type", "status", "age", "engine", "exit", "reason", "tokens / cost", "branch", ""].map((h) =>
      el("th", { text: h })
    )
  )
  const section = el(
    "article",
    { className: "task" },
    el("h2", { text: `${task.task_id}: ${task.task_description}` }),
    el("div", {
      className: `facts${over ? " over" : ""}`,
      text:
        `${task.active_count} active of ${task.max_concurrent} · ${task.total_spawned} spawned of ${task.max_agents} · ${
          caps.join(" · ")
        }`
    }),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))
  )
  section.dataset["task"] = task.task_id
  return section
}

const render = () => {
  if (state === undefined) return
  const now = Date.now()
  const tasks = state.tasks.length === 0
    ? [el("p", { className: "hint", text: "No tasks yet." })]
    : state.tasks.map((t) => renderTask(t, now))
  $("tasks").replaceChildren(...tasks)
}

const refresh = async () => {
  const res = await fetch("/api/state")
  if (res.status === 401) return location.replace("/")
  if (res.ok) {
    state = (await res.json()) as State
    render()
  }
}

const refreshSoon = () => {
  if (refreshTimer !== undefined) return
  refreshTimer = window.setTimeout(() => {
    refreshTimer = undefined
    void refresh()
  }, 50)
}

/** Read an SSE response body, calling `onEvent` with each event's id, type and data. */
const readSse = async (
  res: Response,
  onEvent: (event: { id?: string; type?: string; data: string }) => void
) => {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end).split("\n").filter((l) => !l.startsWith(":"))
      buffer = buffer.slice(end + 2)
      const field = (name: string) => block.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2)
      const data = block.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
      if (block.length === 0) continue
      const id = field("id")
      const type = field("event")
      onEvent({ data, ...(id !== undefined ? { id } : {}), ...(type !== undefined ? { type } : {}) })
    }
  }
}

let lastEventId: string | undefined

/** Follow the event stream for the page's life; a dropped connection resumes where it stopped (Last-Event-ID). */
const followEvents = async () => {
  for (;;) {
    try {
      const res = await fetch("/events", {
        headers: { accept: "text/event-stream", ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}) }
      })
      if (res.status === 401) return location.replace("/")
      if (!res.ok) throw new Error(`events: ${res.status}`)
      $("connection").textContent = "live"
      $("connection").className = "live"
      void refresh()
      await readSse(res, (event) => {
        if (event.id !== undefined) lastEventId = event.id
        const item = el("li", { text: `${event.id ?? ""} ${event.type ?? ""} ${summary(event.data)}` })
        $("events").prepend(item)
        while ($("events").childElementCount > 300) $("events").lastElementChild!.remove()
        refreshSoon()
      })
    } catch {
      // Dropped: try again shortly.
    }
    $("connection").textContent = "reconnecting…"
    $("connection").className = ""
    await new Promise((r) => setTimeout(r, 1000))
  }
}

const summary = (data: string) => {
  try {
    const e = JSON.parse(data) as Record<string, unknown>
    return [e["agent_id"], e["status"], e["reason"] ?? e["message"] ?? ""].filter((x) => x !== undefined && x !== "")
      .join(" ")
  } catch {
    return data
  }
}

/** Show an agent's output: its tail, then every new line as it comes, until another agent is selected. */
const select = (task: string, agent: string) => {
  selected = { task, agent }
  render()
  outputAbort?.abort()
  const abort = new AbortController()
  outputAbort = abort
  const pre = $("output-lines")
  pre.textContent = ""
  $("output").querySelector(".hint")!.textContent = `${agent}`
  void (async () => {
    try {
      const res = await fetch(`/api/output?task=${encodeURIComponent(task)}&agent=${encodeURIComponent(agent)}`, {
        signal: abort.signal
      })
      if (!res.ok) {
        pre.textContent = `${res.status}: ${await res.text()}`
        return
      }
      await readSse(res, (event) => {
        pre.append(`${(JSON.parse(event.data) as { line: string }).line}\n`)
        while (pre.textContent!.length > 200_000) pre.textContent = pre.textContent!.slice(-100_000)
        pre.scrollTop = pre.scrollHeight
      })
    } catch {
      // Aborted (another agent selected) or dropped.
    }
  })()
}

if (document.getElementById("login") !== null) startLogin()
if (document.getElementById("dashboard") !== null) void followEvents()
