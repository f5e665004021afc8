// The chat WebSocket (docs/protocol.md): connect, reconnect with backoff, keep-alive
// pings, send, and the connection status line. It knows nothing else of the protocol:
// every frame goes to `onFrame`; the page decides what a drop or a refusal means.

const PING_EVERY_MS = 25000;
const CLOSE_REFUSED = 4403; // the server refused this origin or session
const CLOSE_DRAINING = 4503; // that server process is shutting down: reconnect now (to another)

/**
 * `path`: the socket's path on this host; `connection`: the status element.
 * Callbacks: onFrame(msg), onRefused() after a 4403 close, onDrop() before reconnecting.
 */
export function createSocket({ path, connection, onFrame, onRefused, onDrop }) {
  let socket = null;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let closedForGood = false;

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  function isOpen() {
    return Boolean(socket) && socket.readyState === WebSocket.OPEN;
  }

  function send(frame) {
    if (!isOpen()) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  /** The server said hello: the connection is up, and the next drop starts the backoff afresh. */
  function greeted() {
    attempt = 0;
    setConnection("open", "");
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    setConnection("connecting", attempt ? "Reconnecting…" : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${window.location.host}${path}`);
    } catch {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg && typeof msg.type === "string") onFrame(msg);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socket = null;
      clearInterval(pingTimer);
      if (event.code === CLOSE_REFUSED) {
        closedForGood = true;
        setConnection("closed", "The chat connection was refused. Reload the page to try again.");
        onRefused();
        return;
      }
      onDrop();
      if (event.code === CLOSE_DRAINING) {
        // Every socket of the process closes at once: a little jitter spreads their return.
        attempt = 0;
        reconnectTimer = setTimeout(connect, Math.random() * 500);
        return;
      }
      scheduleReconnect();
    });
    ws.addEventListener("open", () => {
      clearInterval(pingTimer);
      pingTimer = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
    });
  }

  function scheduleReconnect() {
    if (closedForGood) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 15 s.
    const base = Math.min(15000, 500 * 2 ** attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    attempt += 1;
    setConnection("connecting", `Connection lost — reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(connect, delay);
  }

  window.addEventListener("online", () => {
    if (!socket) {
      attempt = 0;
      connect();
    }
  });

  return { connect, send, isOpen, greeted };
}
