# Empty dependencies file for test_uplink_limits.
# This may be replaced when dependencies are built.
