file(REMOVE_RECURSE
  "CMakeFiles/sedge_uplink.dir/src/uplink/limits.c.o"
  "CMakeFiles/sedge_uplink.dir/src/uplink/limits.c.o.d"
  "CMakeFiles/sedge_uplink.dir/src/uplink/pace.c.o"
  "CMakeFiles/sedge_uplink.dir/src/uplink/pace.c.o.d"
  "CMakeFiles/sedge_uplink.dir/src/uplink/spool.c.o"
  "CMakeFiles/sedge_uplink.dir/src/uplink/spool.c.o.d"
  "CMakeFiles/sedge_uplink.dir/src/uplink/uplink.c.o"
  "CMakeFiles/sedge_uplink.dir/src/uplink/uplink.c.o.d"
  "libsedge_uplink.a"
  "libsedge_uplink.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_uplink.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
