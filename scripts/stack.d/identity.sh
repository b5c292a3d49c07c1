# The identity provider: Keycloak (org.keycloak:keycloak-quarkus-dist from Maven Central, Java 21+), the
# OpenID Connect server every orderflow API trusts. Served over plain HTTP on loopback at
# $ORDERFLOW_IDENTITY_URL, with the realm of identity/orderflow-realm.json imported at its first start.
#
# Install: the tarball is unpacked into the cache and *built* once there (`kc.sh build`: Keycloak's Quarkus
# augmentation, which fixes the build-time options: the dev-file H2 database). Every start then runs
# `kc.sh start --optimized`, which skips that build (about 20 s on two cores) and writes nothing into the cache.
# State: Keycloak writes its database under <home>/data, so each state directory gets a home of its own,
# $ORDERFLOW_STATE/identity/home: bin/ and conf/ copied (kc.sh finds its home from its own path), lib/,
# themes/ and providers/ linked to the cached install, and data/ (H2 database, import directory) real.
# The realm is imported only when it does not exist yet (Keycloak skips an existing realm): to load a changed
# realm file, `scripts/stack down identity`, delete $ORDERFLOW_STATE/identity/home/data, `scripts/stack up identity`.
#
# Production mode (`start`) over HTTP (`--http-enabled=true`), the hostname pinned to $ORDERFLOW_IDENTITY_URL
# so every token's issuer is the same whatever address a client used. Heap 64 to 512 MiB. The master realm's
# admin (console at $ORDERFLOW_IDENTITY_URL/admin) is made at the first start from
# $ORDERFLOW_IDENTITY_ADMIN_USER / $ORDERFLOW_IDENTITY_ADMIN_PASSWORD.

IDENTITY_KEYCLOAK_VERSION=26.7.3

identity_home() { echo "$ORDERFLOW_CACHE/keycloak-$IDENTITY_KEYCLOAK_VERSION"; }

identity_address() { echo "$ORDERFLOW_IDENTITY_URL (realm $ORDERFLOW_IDENTITY_REALM)"; }

# host and port of $ORDERFLOW_IDENTITY_URL (http://host:port)
identity_hostport() {
  local hp="${ORDERFLOW_IDENTITY_URL#*://}"
  echo "${hp%%/*}"
}

identity_java_home() {
  # The same choice of Java 21+ as the registry's (scripts/stack.d/registry.sh).
  registry_java_home
}

identity_install() {
  local home tgz tmp java
  registry_install_java
  java="$(identity_java_home)"
  home="$(identity_home)"
  [ -f "$home/.orderflow-built" ] && return 0
  log "installing Keycloak $IDENTITY_KEYCLOAK_VERSION into $home"
  tgz="$(maven_artifact "org.keycloak:keycloak-quarkus-dist:$IDENTITY_KEYCLOAK_VERSION:tar.gz")"
  tmp="$home.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$tgz" -C "$tmp" --strip-components=1 || { rm -rf "$tmp"; die "could not unpack $tgz"; }
  [ -x "$tmp/bin/kc.sh" ] || { rm -rf "$tmp"; die "$tgz has no bin/kc.sh"; }
  log "building Keycloak (its one-time Quarkus augmentation) ..."
  JAVA_HOME="$java" "$tmp/bin/kc.sh" build --db=dev-file >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; rm -rf "$tmp"; die "kc.sh build failed"; }
  rm -rf "$tmp/data"
  touch "$tmp/.orderflow-built"
  rm -rf "$home"
  mv "$tmp" "$home"
}

# The state directory's own Keycloak home (see the top of this file).
identity_state_home() {
  local dir home link
  dir="$(component_dir identity)/home"
  home="$(identity_home)"
  mkdir -p "$dir/data/import"
  rm -rf "$dir/bin" "$dir/conf"
  cp -r "$home/bin" "$home/conf" "$dir/"
  for link in lib themes providers; do
    ln -sfn "$home/$link" "$dir/$link"
  done
  cp "$ORDERFLOW_ROOT/identity/orderflow-realm.json" "$dir/data/import/orderflow-realm.json"
  echo "$dir"
}

identity_start() {
  local home hp
  home="$(identity_state_home)"
  hp="$(identity_hostport)"
  start_background identity env -C "$(component_dir identity)" \
    JAVA_HOME="$(identity_java_home)" \
    JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m" \
    KC_BOOTSTRAP_ADMIN_USERNAME="$ORDERFLOW_IDENTITY_ADMIN_USER" \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$ORDERFLOW_IDENTITY_ADMIN_PASSWORD" \
    "$home/bin/kc.sh" start --optimized \
    --http-enabled=true \
    --http-host="${hp%:*}" \
    --http-port="${hp##*:}" \
    --hostname="$ORDERFLOW_IDENTITY_URL" \
    --hostname-strict=false \
    --import-realm
}

identity_healthy() { http_ok "$ORDERFLOW_IDENTITY_URL/realms/$ORDERFLOW_IDENTITY_REALM/.well-known/openid-configuration"; }

identity_timeout() { echo 180; }
