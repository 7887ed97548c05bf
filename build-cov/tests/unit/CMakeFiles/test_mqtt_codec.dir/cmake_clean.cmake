file(REMOVE_RECURSE
  "CMakeFiles/test_mqtt_codec.dir/test_mqtt_codec.c.o"
  "CMakeFiles/test_mqtt_codec.dir/test_mqtt_codec.c.o.d"
  "test_mqtt_codec"
  "test_mqtt_codec.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_mqtt_codec.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
