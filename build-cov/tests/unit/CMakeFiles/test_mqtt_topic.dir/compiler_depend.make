# Empty compiler generated dependencies file for test_mqtt_topic.
# This may be replaced when dependencies are built.
