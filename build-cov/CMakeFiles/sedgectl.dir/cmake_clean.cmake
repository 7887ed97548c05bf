file(REMOVE_RECURSE
  "CMakeFiles/sedgectl.dir/src/cli/admin_client.c.o"
  "CMakeFiles/sedgectl.dir/src/cli/admin_client.c.o.d"
  "CMakeFiles/sedgectl.dir/src/cli/main.c.o"
  "CMakeFiles/sedgectl.dir/src/cli/main.c.o.d"
  "sedgectl"
  "sedgectl.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedgectl.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
