//! Named scenarios from the acceptance list, each a scripted run of the simulator.
