//! Python environment, start-up and shutdown behaviour.
