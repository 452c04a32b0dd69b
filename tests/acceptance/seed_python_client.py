# The Python (paho-mqtt) client example of the Go mqttspec README (seed 002), verbatim except where
# a line is marked "test:": host, port and client id come from argv / the environment (the seed's
# values are the defaults), and the client disconnects once the response has arrived.
# Usage: python3 seed_python_client.py [HOST [PORT [CLIENT_ID]]]
#        (or MQTT_HOST / MQTT_PORT / MQTT_CLIENT_ID)
import paho.mqtt.client as mqtt
import json
import os  # test: configuration from argv / environment
import sys  # test

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('MQTT_HOST', 'localhost')  # test
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get('MQTT_PORT', '1883'))  # test
client_id = sys.argv[3] if len(sys.argv) > 3 else os.environ.get('MQTT_CLIENT_ID', 'client-python-123')  # test: was 'client-python-123'

def on_connect(client, userdata, flags, rc):
    print(f"Connected with result code {rc}")

    # Subscribe to responses
    client.subscribe(f"spec/{client_id}/response")

    # Create a user
    create_msg = {
        'id': 'msg-create-1',
        'type': 'request',
        'operation': 'create',
        'schema': 'public',
        'entity': 'users',
        'data': {
            'name': 'Python User',
            'email': 'python@example.com',
            'status': 'active'
        }
    }

    client.publish(f"spec/{client_id}/request", json.dumps(create_msg))

def on_message(client, userdata, msg):
    message = json.loads(msg.payload.decode())
    print(f"Received on {msg.topic}: {message}")
    if message.get('type') == 'response':  # test: exit once the response has arrived
        client.disconnect()  # test

client = mqtt.Client(client_id=client_id)
client.username_pw_set('your-jwt-token', '')
client.on_connect = on_connect
client.on_message = on_message

client.connect(host, port, 60)  # test: was client.connect('localhost', 1883, 60)
client.loop_forever()
