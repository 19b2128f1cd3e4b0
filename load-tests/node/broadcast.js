// `node broadcast.js PORT`: the Node `ws` baseline (what a team would
// otherwise pick). Every text frame a client sends goes to every other
// connected client; no authentication, no store. A client whose socket has
// more than 1024 frames' worth of bytes buffered is dropped, like ours.
'use strict';
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 9002);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: true });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const limit = 1024 * data.length;
    for (const c of wss.clients) {
      if (c === ws || c.readyState !== WebSocket.OPEN) continue;
      if (c.bufferedAmount > limit) {
        c.terminate();
        continue;
      }
      c.send(data, { binary: isBinary });
    }
  });
  ws.on('error', () => {});
});
wss.on('listening', () => console.log('ready'));
