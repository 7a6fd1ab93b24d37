"""Real local services for the demo and the tests: a Mosquitto broker and an RTSP server on free ports."""
