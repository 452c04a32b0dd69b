// The JavaScript (MQTT.js) client example of the Go mqttspec README (seed 002), verbatim except
// where a line is marked "test:": host, port and client id come from argv / the environment (the
// seed's values are the defaults), and the client ends once the response has arrived.
// Usage: node seed_js_client.js [HOST [PORT [CLIENT_ID]]]  (or MQTT_HOST / MQTT_PORT / MQTT_CLIENT_ID;
// MQTT_URL, e.g. ws://127.0.0.1:9001, replaces host and port)
const host = process.argv[2] || process.env.MQTT_HOST || 'localhost'; // test
const port = process.argv[3] || process.env.MQTT_PORT || '1883'; // test
const clientId = process.argv[4] || process.env.MQTT_CLIENT_ID || 'client-abc123'; // test
const url = process.env.MQTT_URL || `mqtt://${host}:${port}`; // test: ws://, wss:// too
const mqtt = require('mqtt');

// Connect to MQTT broker
const client = mqtt.connect(url, { // test: was 'mqtt://localhost:1883'
  clientId: clientId, // test: was 'client-abc123'
  username: 'your-jwt-token',
  password: '',  // JWT in username, password can be empty
});

client.on('connect', () => {
  console.log('Connected to MQTT broker');

  // Subscribe to responses
  client.subscribe(`spec/${clientId}/response`); // test: was 'spec/client-abc123/response'

  // Read users
  const readMsg = {
    id: 'msg-1',
    type: 'request',
    operation: 'read',
    schema: 'public',
    entity: 'users',
    options: {
      filters: [
        { column: 'status', operator: 'eq', value: 'active' }
      ]
    }
  };

  client.publish(`spec/${clientId}/request`, JSON.stringify(readMsg)); // test: was 'spec/client-abc123/request'
});

client.on('message', (topic, payload) => {
  const message = JSON.parse(payload.toString());
  console.log('Received:', message);

  if (message.type === 'response') {
    console.log('Response data:', message.data);
    client.end(); // test: exit once the response has arrived
  } else if (message.type === 'notification') {
    console.log('Notification:', message.operation, message.data);
  }
});
