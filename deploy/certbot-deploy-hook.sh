#!/bin/sh
# Certbot deploy hook for TLS served directly by the webinar server:
#   install -m 755 deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/webinar
# Copies the renewed pair where the unprivileged service user can read it, then reloads the
# server (SIGHUP): new connections get the new certificate, live rooms carry on.
set -eu
domain=${WEBINAR_DOMAIN:-webinar.example.org}
case " ${RENEWED_DOMAINS:-$domain} " in *" $domain "*) ;; *) exit 0 ;; esac
live=${RENEWED_LINEAGE:-/etc/letsencrypt/live/$domain}
install -d -m 750 -o root -g webinar /etc/webinar/tls
install -m 644 -o root -g webinar "$live/fullchain.pem" /etc/webinar/tls/fullchain.pem.new
install -m 640 -o root -g webinar "$live/privkey.pem" /etc/webinar/tls/privkey.pem.new
mv /etc/webinar/tls/privkey.pem.new /etc/webinar/tls/privkey.pem
mv /etc/webinar/tls/fullchain.pem.new /etc/webinar/tls/fullchain.pem
systemctl reload webinar
