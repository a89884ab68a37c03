// The fiddle page's script: hello from the connect handler, then latency.py's ping and pong.
const socket = io({ auth: { token: "t" } });
let sent = 0;

function log(text) {
  const p = document.createElement("p");
  p.textContent = text;
  document.body.appendChild(p);
}

socket.on("hello", (a, b, c) => {
  log("hello " + JSON.stringify([a, b, c]));
  sent = performance.now();
  socket.emit("ping_from_client");
});

socket.on("pong_from_server", () => {
  log("latency " + Math.round(performance.now() - sent) + " ms");
});
