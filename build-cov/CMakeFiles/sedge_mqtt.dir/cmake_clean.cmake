file(REMOVE_RECURSE
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/packets.c.o"
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/packets.c.o.d"
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/topic.c.o"
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/topic.c.o.d"
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/wire.c.o"
  "CMakeFiles/sedge_mqtt.dir/src/mqtt/wire.c.o.d"
  "libsedge_mqtt.a"
  "libsedge_mqtt.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_mqtt.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
