file(REMOVE_RECURSE
  "CMakeFiles/test_mqtt_topic.dir/test_mqtt_topic.c.o"
  "CMakeFiles/test_mqtt_topic.dir/test_mqtt_topic.c.o.d"
  "test_mqtt_topic"
  "test_mqtt_topic.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_mqtt_topic.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
