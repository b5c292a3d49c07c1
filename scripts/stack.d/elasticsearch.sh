# placeholder: being written
elasticsearch_install() { :; }
elasticsearch_start() { :; }
elasticsearch_healthy() { return 1; }
elasticsearch_address() { echo "?"; }
