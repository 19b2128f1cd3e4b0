//! Conformance tests: waiting rooms and their guests.

use handoff_protocol::v1::{RoomSettings, RoomVideo};
use handoff_protocol::{GuestId, RoomId};

use super::*;

fn room(n: u8, practice: PracticeId, link: &str) -> RoomRecord {
    RoomRecord {
        id: RoomId::from_bytes(id16(200 + n)),
        practice,
        name: format!("Room {n}"),
        link: link.into(),
        sealed_secret: vec![n; 48],
        epoch: 0,
        settings: RoomSettings::default(),
        created_at: 5_000 + i64::from(n),
    }
}

fn guest(n: u8, room: RoomId, at: i64) -> GuestRecord {
    GuestRecord { id: GuestId::from_bytes(id16(n)), room, checked_in_at: at, removed: false, expires_at: at + 1_000 }
}

suite! {
    __conformance_rooms;

    pub async fn a_room_is_stored_listed_updated_and_found_by_its_link_only(s: &dyn Store) {
        let (_, p, q) = two_practices(s).await;
        let r1 = room(1, p.id, "link-one");
        let r2 = room(2, p.id, "link-two");
        s.create_room(r1.clone()).await.unwrap();
        s.create_room(r2.clone()).await.unwrap();
        assert!(matches!(s.create_room(r1.clone()).await, Err(RoomError::RoomExists)));
        assert!(matches!(s.create_room(RoomRecord { id: RoomId::from_bytes(id16(250)), ..r1.clone() }).await, Err(RoomError::LinkTaken)));
        let unknown = PracticeId::from_bytes(id16(99));
        assert!(matches!(s.create_room(RoomRecord { practice: unknown, ..room(3, p.id, "x") }).await, Err(RoomError::NoSuchPractice)));
        assert_eq!(s.rooms_of(p.id).await.unwrap(), vec![r1.clone(), r2.clone()], "oldest first");
        assert_eq!(s.rooms_of(q.id).await.unwrap(), vec![]);
        assert_eq!(s.room_by_link("link-two").await.unwrap(), Some(r2.clone()));
        assert_eq!(s.room_by_link("link-three").await.unwrap(), None);
        let settings = RoomSettings { ask_dob: true, video: RoomVideo::BuiltIn, wait_alert_minutes: 9, ..RoomSettings::default() };
        let up = s.update_room(r1.id, Some("Dr. Lee".into()), Some(settings.clone())).await.unwrap();
        assert_eq!((up.name.as_str(), &up.settings, &up.link), ("Dr. Lee", &settings, &r1.link));
        let renamed = s.update_room(r1.id, Some("Dr. Lee's clinic".into()), None).await.unwrap();
        assert_eq!(renamed.settings, settings, "a rename keeps the settings");
        assert_eq!(s.room(r1.id).await.unwrap(), Some(renamed));
        assert!(matches!(s.update_room(RoomId::from_bytes(id16(251)), None, None).await, Err(RoomError::NoSuchRoom)));
    }

    pub async fn a_rotated_link_stops_finding_the_room_at_once(s: &dyn Store) {
        let (_, p, _) = two_practices(s).await;
        let r = room(1, p.id, "old-link");
        s.create_room(r.clone()).await.unwrap();
        s.create_room(room(2, p.id, "taken")).await.unwrap();
        assert!(matches!(s.rotate_room(r.id, "taken".into(), vec![1], 1).await, Err(RoomError::LinkTaken)));
        let rotated = s.rotate_room(r.id, "new-link".into(), vec![7; 48], 3).await.unwrap();
        assert_eq!((rotated.link.as_str(), rotated.sealed_secret.as_slice(), rotated.epoch), ("new-link", [7u8; 48].as_slice(), 3));
        assert_eq!(s.room_by_link("old-link").await.unwrap(), None);
        assert_eq!(s.room_by_link("new-link").await.unwrap().map(|x| x.id), Some(r.id));
        assert!(matches!(s.rotate_room(RoomId::from_bytes(id16(251)), "z".into(), vec![], 0).await, Err(RoomError::NoSuchRoom)));
    }

    pub async fn guests_are_found_by_their_token_hash_removed_counted_and_swept(s: &dyn Store) {
        let (_, p, _) = two_practices(s).await;
        let r = room(1, p.id, "l");
        s.create_room(r.clone()).await.unwrap();
        let g1 = guest(1, r.id, 100);
        let g2 = guest(2, r.id, 200);
        s.add_guest(g1.clone(), [1; 32]).await.unwrap();
        s.add_guest(g2.clone(), [2; 32]).await.unwrap();
        assert!(matches!(s.add_guest(guest(3, RoomId::from_bytes(id16(251)), 1), [3; 32]).await, Err(RoomError::NoSuchRoom)));
        assert_eq!(s.guest_by_token([1; 32]).await.unwrap(), Some(g1.clone()));
        assert_eq!(s.guest_by_token([9; 32]).await.unwrap(), None);
        assert_eq!(s.live_guests(r.id, 150).await.unwrap(), 2);
        s.remove_guest(g1.id).await.unwrap();
        assert_eq!(s.guest_by_token([1; 32]).await.unwrap().map(|g| g.removed), Some(true), "a removed token stays known, as dead");
        assert_eq!(s.live_guests(r.id, 150).await.unwrap(), 1);
        assert_eq!(s.live_guests(r.id, 1_200).await.unwrap(), 0, "an expired guest no longer counts");
        assert!(matches!(s.remove_guest(GuestId::from_bytes(id16(77))).await, Err(RoomError::NoSuchGuest)));
        assert_eq!(s.sweep_guests(1_100).await.unwrap(), 1);
        assert_eq!(s.guest_by_token([1; 32]).await.unwrap(), None);
        assert_eq!(s.guest_by_token([2; 32]).await.unwrap(), Some(g2));
    }

    pub async fn deleting_a_room_or_its_practice_deletes_its_rooms_and_guests(s: &dyn Store) {
        let (_, p, q) = two_practices(s).await;
        let r1 = room(1, p.id, "a");
        let r2 = room(2, q.id, "b");
        s.create_room(r1.clone()).await.unwrap();
        s.create_room(r2.clone()).await.unwrap();
        s.add_guest(guest(1, r1.id, 1), [1; 32]).await.unwrap();
        s.add_guest(guest(2, r2.id, 1), [2; 32]).await.unwrap();
        s.delete_room(r2.id).await.unwrap();
        assert_eq!(s.room(r2.id).await.unwrap(), None);
        assert_eq!(s.guest_by_token([2; 32]).await.unwrap(), None, "a deleted room's guests go with it");
        assert!(matches!(s.delete_room(r2.id).await, Err(RoomError::NoSuchRoom)));
        s.delete_practice(p.id).await.unwrap();
        assert_eq!(s.room(r1.id).await.unwrap(), None, "a deleted practice's rooms go with it");
        assert_eq!(s.room_by_link("a").await.unwrap(), None);
        assert_eq!(s.guest_by_token([1; 32]).await.unwrap(), None);
    }
}
