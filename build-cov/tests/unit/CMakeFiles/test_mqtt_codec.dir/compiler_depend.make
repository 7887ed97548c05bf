# Empty compiler generated dependencies file for test_mqtt_codec.
# This may be replaced when dependencies are built.
