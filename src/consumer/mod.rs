//! The consumer: fetching per broker, positions, seek, pause and resume.
