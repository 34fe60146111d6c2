"""Game days (DESIGN section 7): seeded, time-boxed nights of mixed faults over back-to-back pipeline runs."""
