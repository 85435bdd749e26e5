#!/bin/sh
# A real systemd inside a namespace harness host, for tests that run `meshcc service install`
# as a person would: `system` boots systemd as PID 1 of a PID namespace (as a container
# manager would), `user` starts a user manager (`systemd --user`). Nothing leaks to the
# machine: each runs in a cgroup of its own (and a cgroup namespace rooted there, so systemd
# only manages what it started), in a mount namespace where /run, /opt and (system) /etc,
# /tmp, /var/tmp, /var/lib and /var/cache are throwaway; the checkout is bound at /opt/meshcc
# so the units' PrivateTmp= does not hide it. Every unit but the ones a test installs is
# masked, so booting starts nothing of this machine's.
#   usage: systemd-boot.sh system|user CHECKOUT CGROUP-NAME
set -eu
mode=$1 checkout=$2 cgroup=$3

# The machine's cgroup file systems (`ip netns exec` gives the command a /sys without them),
# mounted again here: in a cgroup namespace they are rooted at its cgroup.
mount_cgroups() {
  echo "$MESHCC_BOOT_CGROUPS" | while read -r dir type opts; do
    mkdir -p "$dir"
    # the tmpfs that holds the hierarchies is read-only once they are in; here it must take them
    [ "$type" = tmpfs ] && opts=mode=755
    mount -t "$type" -o "$opts" "$type" "$dir"
  done
}

if [ "${MESHCC_BOOT_STAGE:-0}" = 0 ]; then
  # what this script mounts stays in mount namespaces of its own
  export MESHCC_BOOT_STAGE=1
  exec unshare --mount --propagation private sh "$0" "$@"
fi

if [ "$MESHCC_BOOT_STAGE" = 1 ]; then
  MESHCC_BOOT_CGROUPS=$(awk '$2 ~ "^/sys/fs/cgroup" && ($3 == "tmpfs" || $3 == "cgroup" || $3 == "cgroup2") { print $2, $3, $4 }' /proc/1/mounts)
  export MESHCC_BOOT_CGROUPS
  [ -n "$MESHCC_BOOT_CGROUPS" ] || { echo "no cgroup file systems on this machine" >&2; exit 1; }
  mount_cgroups
  # cpuset is left alone: a new cpuset cgroup has no CPUs until given some.
  if [ -e /sys/fs/cgroup/cgroup.procs ]; then
    mkdir -p "/sys/fs/cgroup/$cgroup" && echo $$ > "/sys/fs/cgroup/$cgroup/cgroup.procs"
  else
    for h in /sys/fs/cgroup/*/; do
      case "$h" in */cpuset/) continue ;; esac
      [ -e "${h}cgroup.procs" ] || continue
      mkdir -p "$h$cgroup" && echo $$ > "$h$cgroup/cgroup.procs"
    done
  fi
  export MESHCC_BOOT_STAGE=2
  if [ "$mode" = system ]; then
    exec unshare --cgroup --mount --propagation private --pid --fork --mount-proc sh "$0" "$@"
  fi
  exec unshare --cgroup --mount --propagation private sh "$0" "$@"
fi

# The cgroup file systems again, rooted at this cgroup namespace's root.
mount_cgroups
mount -t tmpfs -o mode=755 meshcc-boot /opt
mkdir /opt/meshcc
mount --bind "$checkout" /opt/meshcc
mount -t tmpfs -o mode=755 meshcc-boot /run
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mask_units() { # $1: directory of runtime masks; then the directories of units to mask
  masks=$1; shift
  mkdir -p "$masks"
  for dir in "$@"; do
    for unit in "$dir"/*; do
      [ -e "$unit" ] || continue
      name=${unit##*/}
      case "$name" in
        -.mount | *.target | *.slice | *.scope | *.wants | *.requires | *.d) ;;
        *.service | *.socket | *.timer | *.path | *.mount | *.automount | *.swap) ln -sf /dev/null "$masks/$name" ;;
      esac
    done
  done
}

if [ "$mode" = system ]; then
  mkdir /opt/etc-upper /opt/etc-work
  mount -t overlay meshcc-boot -o lowerdir=/etc,upperdir=/opt/etc-upper,workdir=/opt/etc-work /etc
  for dir in /tmp /var/tmp /var/lib /var/cache; do mount -t tmpfs -o mode=755 meshcc-boot "$dir"; done
  chmod 1777 /tmp /var/tmp
  # system.control outranks /etc/systemd/system: a unit the test installs there is not masked.
  mask_units /run/systemd/system.control /lib/systemd/system /etc/systemd/system
  rm -f /run/systemd/system.control/meshcc.service
  mkdir -p /run/systemd/system
  printf '[Unit]\nDescription=meshcc test boot\n' > /run/systemd/system/meshcc-test.target
  exec env -i container=meshcc-test PATH="$path" /lib/systemd/systemd --unit=meshcc-test.target
fi

# A user manager only runs where systemd booted the machine, which it tells by this directory.
mkdir -p /run/systemd/system /opt/home /opt/run
chmod 700 /opt/run
mask_units /opt/run/systemd/user.control /usr/lib/systemd/user /etc/systemd/user
mkdir -p /opt/run/systemd/user
printf '[Unit]\nDescription=meshcc test session\n' > /opt/run/systemd/user/meshcc-test.target
exec env -i HOME=/opt/home XDG_RUNTIME_DIR=/opt/run PATH="$path" /lib/systemd/systemd --user --unit=meshcc-test.target
