"""The insight memory: reading, searching and marking what the cycles remembered."""
