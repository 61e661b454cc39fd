"""Signal-timing policies behind one interface: each answers "which phase should be served next?"."""
