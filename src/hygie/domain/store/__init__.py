"""The Store santé's rules: the criteria grid, the referencing process, report triage, audit
sampling. Pure functions and data, no I/O."""
