file(REMOVE_RECURSE
  "CMakeFiles/test_uplink_limits.dir/test_uplink_limits.c.o"
  "CMakeFiles/test_uplink_limits.dir/test_uplink_limits.c.o.d"
  "test_uplink_limits"
  "test_uplink_limits.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_uplink_limits.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
