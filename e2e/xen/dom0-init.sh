#!/bin/sh
# /init of the Xen end-to-end test's dom0: mounts, Xen drivers, xenstored and xenconsoled,
# then the test driver (/lightpod/dom0-test.sh), whose lines reach the serial console.
# Power-off through `reboot -f`: Xen then reboots, which QEMU's -no-reboot turns into an exit.
export PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin:/usr/lib/xen-4.17/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run/xen /run/xenstored /run/lightpod /var/lib/xenstored /var/log/xen/console
mount -t devpts devpts /dev/pts
# No udev: the hotplug scripts' locking needs these links.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
echo "LPXEN DOM0_UP $(cut -d' ' -f1 /proc/uptime)"
for module in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs loop xen-blkback; do
    insmod /lib/modules/$module.ko || echo "LPXEN WARN insmod $module failed"
done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen
# The hotplug scripts log through logger(1).
syslogd -O /var/log/messages
xenstored --pid-file /run/xen/xenstored.pid
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S /run/xenstored/socket ] && break; sleep 0.5; done
xen-init-dom0 >/dev/null
# No guest log: the console of lightpod guests carries the agent channel.
xenconsoled --pid-file=/run/xen/xenconsoled.pid
echo "LPXEN XEN_READY $(cut -d' ' -f1 /proc/uptime)"
/lightpod/dom0-test.sh
echo "LPXEN END $(cut -d' ' -f1 /proc/uptime)"
sync
reboot -f
