# Empty compiler generated dependencies file for sedge_mqtt.
# This may be replaced when dependencies are built.
